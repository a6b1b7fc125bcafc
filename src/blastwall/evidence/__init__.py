"""evidence: the vault, its hash-chained ledger, custody, bundles and retro-hunts."""
