"""The seal of a destruction or transfer list: the digest over its date and items, which every
approval signs, and the check of those signatures. An item changed after the approval, an
approval by the list's maker or a forged signature is found here."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from typing import Any

from connector.model import canonical_json

__all__ = ["DIGEST_KEYS", "Digest", "list_digest", "sign", "valid_approvals"]

DIGEST_KEYS = ("doc_id", "external_id", "part", "doc_class", "category", "basis", "due")


class Digest:
    """SHA-256 over the list's date (and, for a transfer list, its kind and receiving party) and
    its items in document-id order, fed item by item."""

    def __init__(self, as_of: date, kind: str = "destruction", receiving: str | None = None) -> None:
        self._kind = kind
        self._h = hashlib.sha256(as_of.isoformat().encode())
        if kind != "destruction":
            self._h.update(b"\n" + canonical_json([kind, receiving]).encode())

    def add(self, item: dict[str, Any]) -> None:
        keys = (*DIGEST_KEYS, "verified") if self._kind == "transfer" else DIGEST_KEYS
        self._h.update(b"\n" + canonical_json([str(item[k]) for k in keys]).encode())

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def list_digest(head: dict[str, Any], items: list[dict[str, Any]]) -> str:
    d = Digest(head["as_of"], head.get("kind") or "destruction", head.get("receiving"))
    for item in sorted(items, key=lambda i: str(i["doc_id"])):
        d.add(item)
    return d.hexdigest()


def sign(key: bytes, list_id: int, digest: str, approver: str, at: str, rejected: dict[str, str]) -> str:
    """The signature of one approval (HMAC-SHA256 with the install's approval key)."""
    body = canonical_json(["approval", list_id, digest, approver, at, rejected])
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()



def valid_approvals(key: bytes, head: dict[str, Any], given: list[dict[str, Any]], digest: str
                    ) -> tuple[list[dict[str, Any]], list[str]]:
    """The approvals that count for the list as it is now: signed, over this digest, by a
    person who is not the list's maker, one per person. Returns (valid, problems)."""
    valid: list[dict[str, Any]] = []
    problems: list[str] = []
    seen: set[str] = set()
    for a in given:
        expected = sign(key, head["id"], a["digest"], a["approver"], a["at"], a["rejected"])
        if not hmac.compare_digest(expected, a["signature"]):
            problems.append(f"the approval by {a['approver']} does not carry a valid signature")
        elif a["digest"] != digest:
            problems.append(f"the approval by {a['approver']} is for another version of the list")
        elif a["approver"] == head["created_by"]:
            problems.append(f"{a['approver']} made the list and cannot approve it")
        elif a["approver"] not in seen:
            seen.add(a["approver"])
            valid.append(a)
    return valid, problems
