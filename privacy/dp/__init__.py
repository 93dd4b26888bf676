"""Differential privacy: DP-SGD at each site (Opacus), per-site ε ledgers and budgets, central DP of the aggregate."""
