"""What an adapter author tests a DMS adapter with: the one conformance suite of the
DocumentStore port, as classes to subclass (see ``adapters.testing.document_store``)."""

from adapters.testing.document_store import AccessContract, DocumentStoreContract, TrashContract, dossier_spec

__all__ = ["AccessContract", "DocumentStoreContract", "TrashContract", "dossier_spec"]
