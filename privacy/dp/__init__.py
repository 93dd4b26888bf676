"""Differential privacy at each site: DP-SGD (Opacus), its plan, and per-site ε ledgers and budgets."""
