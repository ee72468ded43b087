"""A churn dataset shaped like manifests/examples/trainingrun-churn.yaml, generated deterministically.

Used by the cluster and end-to-end tests and by `make demo`; `shift` moves the customer
population (longer tenure, higher charges, more fibre) to make drift on purpose.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENTS = ["electronic-check", "mailed-check", "bank-transfer", "credit-card"]
INTERNET = ["dsl", "fiber", "none"]


def churn_frame(rows: int, seed: int = 7, shift: float = 0.0, label_noise: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = np.clip(rng.gamma(2.0 + 2 * shift, 12.0, rows), 0, 120).astype(int)
    contract = rng.choice(CONTRACTS, rows, p=[0.55 - 0.2 * shift, 0.25 + 0.1 * shift, 0.2 + 0.1 * shift])
    internet = rng.choice(INTERNET, rows, p=[0.35 - 0.2 * shift, 0.45 + 0.2 * shift, 0.2])
    monthly = np.round(rng.normal(65 + 25 * shift, 20, rows).clip(18, 150), 2)
    total = np.round(monthly * np.maximum(tenure, 1) * rng.uniform(0.9, 1.1, rows), 2)
    total[rng.random(rows) < 0.01] = np.nan  # a few missing values, within the 2% the spec allows
    tickets = rng.poisson(1.5 + shift, rows).clip(0, 100)
    senior = rng.random(rows) < 0.16
    logit = (
        -1.2 - 0.04 * tenure + 0.02 * (monthly - 65) + 0.35 * tickets
        + np.where(contract == "month-to-month", 1.4, -0.6) + np.where(internet == "fiber", 0.5, 0.0)
        + 0.3 * senior
    )  # fmt: skip
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    flip = rng.random(rows) < label_noise
    churned = np.where(flip, ~churned, churned)
    return pd.DataFrame({
        "tenure_months": tenure, "monthly_charges": monthly, "total_charges": total, "contract": contract,
        "payment_method": rng.choice(PAYMENTS, rows), "internet_service": internet, "senior_citizen": senior,
        "support_tickets": tickets, "churned": churned,
    })  # fmt: skip


def churn_csv(rows: int, **options: float) -> bytes:
    return churn_frame(rows, **options).to_csv(index=False).encode()  # type: ignore[arg-type]
