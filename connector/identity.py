"""Which identifier keys a dossier, and the pseudonymous key used in every log and report.

The pseudonym is a keyed hash (HMAC-SHA256 with the per-install secret) of the pupil's LAS key
within its school: stable across runs, meaningless without the secret, never reversible from
a log line. Suspected-duplicate checks compare keyed hashes too, so no BSN or name is stored
for them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata

from connector.errors import RejectedRecord
from connector.model import IdentityScheme, Pupil


class Identity:
    def __init__(self, secret: bytes, scheme: IdentityScheme) -> None:
        self._key = hmac.new(secret, b"leerdossier/pseudonym", hashlib.sha256).digest()
        self._keyed = hmac.new(self._key, digestmod=hashlib.sha256)
        self.audit_key = hmac.new(secret, b"leerdossier/audit", hashlib.sha256).digest()
        self.index_key = hmac.new(secret, b"leerdossier/dms-index", hashlib.sha256).digest()
        self.approval_key = hmac.new(secret, b"leerdossier/approval", hashlib.sha256).digest()
        self.session_key = hmac.new(secret, b"leerdossier/web-session", hashlib.sha256).digest()
        self.digest_key = hmac.new(secret, b"leerdossier/source-digest", hashlib.sha256).digest()
        self.scheme = scheme

    def _mac(self, *parts: str) -> str:
        mac = self._keyed.copy()  # pre-keyed: cheaper than a new HMAC per call
        mac.update("\x00".join(parts).encode())
        return mac.hexdigest()

    def pseudonym_of(self, school: str, las_key: str) -> str:
        return "p-" + self._mac("pupil", school, las_key)[:16]

    def pseudonym(self, pupil: Pupil) -> str:
        return self.pseudonym_of(pupil.school.code, pupil.key)

    def external_id(self, pupil: Pupil) -> str:
        """The dossier's stable key in the DMS, by the configured scheme."""
        if self.scheme == "las_key":
            return f"las:{pupil.school.code}:{pupil.key}"
        if self.scheme == "eckid":
            if not pupil.eckid:
                p = self.pseudonym(pupil)
                raise RejectedRecord(_label(p, pupil), "@eckid", "missing; dossiers are keyed on the ECK-iD", p)
            return f"eckid:{pupil.eckid}"
        if pupil.pgn is None or pupil.pgn_kind not in ("bsn", "onderwijsnummer"):
            p = self.pseudonym(pupil)
            raise RejectedRecord(
                _label(p, pupil), "bsn/onderwijsnummer",
                "missing; dossiers are keyed on the onderwijsnummer", p,
            )
        return f"pgn:{pupil.pgn}"

    def guardian_id(self, external_id: str, relation: str | None, name: str) -> str:
        """A guardian's stable pseudonymous id within one dossier (``g-...``): from the relation
        and the normalised name, so the same person in the next export gets the same id."""
        return "g-" + self._mac("guardian", external_id, relation or "", _norm(name))[:12]

    def access_payload(self, pupil: Pupil, external_id: str) -> str | None:
        """The access facts a source delivered for this pupil, as canonical JSON (None: none)."""
        if pupil.geboortedatum is None and not pupil.guardians:
            return None
        gs = []
        for g in pupil.guardians:
            name = " ".join(x for x in (g.voorletters, g.voorvoegsel, g.achternaam) if x)
            gs.append({"id": self.guardian_id(external_id, g.relatie, name), "display": name or None,
                       "relation": g.relatie, "authority": g.gezag, "deceased": g.overleden})
        gs.sort(key=lambda x: str(x["id"]))
        birth = pupil.geboortedatum.isoformat() if pupil.geboortedatum else None
        return json.dumps({"birth": birth, "guardians": gs}, sort_keys=True, separators=(",", ":"))

    def duplicate_hashes(self, pupil: Pupil) -> tuple[str | None, str | None]:
        """Keyed hashes of (BSN/onderwijsnummer) and of (birth date, name), for duplicate checks."""
        pgn = self._mac("pgn", pupil.pgn) if pupil.pgn and pupil.pgn_kind != "sofinummer" else None
        given = pupil.roepnaam or (pupil.voornamen.split()[0] if pupil.voornamen else None)
        name = _norm(f"{given} {pupil.achternaam}") if given and pupil.achternaam else ""
        nb = (
            self._mac("namebirth", pupil.geboortedatum.isoformat(), name)
            if pupil.geboortedatum and name
            else None
        )
        return pgn, nb

    def eckid_hash(self, pupil: Pupil) -> str | None:
        """A keyed hash of the ECK-iD, where the source gave one: it finds a dossier when the
        LAS key changed, and marks two records of one child. The ECK-iD itself is not kept."""
        return self._mac("eckid", pupil.eckid.strip()) if pupil.eckid and pupil.eckid.strip() else None


def _norm(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if c.isalnum() or c.isspace()).split())


def _label(pseudonym: str, pupil: Pupil) -> str:
    return f"{pseudonym} (line {pupil.line})" if pupil.line else pseudonym
