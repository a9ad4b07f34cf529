"""leerdossier-connector core: pupils, dossiers, retention and sync. Knows no protocol."""
