"""Custom domains: the domain manager, DNS ownership checks and each domain's robots.txt (D1, D4, D6)."""
