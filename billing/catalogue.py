"""The plan catalogue `seed_plans` keeps in the database. Prices are per currency; yearly bills ten months."""

from decimal import Decimal

PLANS = [
    {
        "code": "starter",
        "name": "Starter",
        "description": "For a single business capturing its own leads.",
        "monthly_lead_quota": 1000,
        "seats": 3,
        "features": ["All lead sources", "WhatsApp & email alerts", "Pipeline & inbox", "API & webhooks"],
        "prices": {"INR": Decimal("999"), "USD": Decimal("19")},
        "sort_order": 10,
    },
    {
        "code": "growth",
        "name": "Growth",
        "description": "For growing teams that route leads to agents and automate follow-up.",
        "monthly_lead_quota": 10000,
        "seats": 10,
        "features": [
            "Everything in Starter",
            "Round-robin assignment",
            "Automations",
            "AI lead scoring",
            "Analytics",
        ],
        "prices": {"INR": Decimal("2999"), "USD": Decimal("49")},
        "sort_order": 20,
    },
    {
        "code": "agency",
        "name": "Agency",
        "description": "For agencies and lead sellers distributing leads to buyers.",
        "monthly_lead_quota": 0,
        "seats": 0,
        "features": [
            "Everything in Growth",
            "Buyer campaigns & wallets",
            "Suppliers & distribution rules",
            "Priority support",
        ],
        "prices": {"INR": Decimal("7999"), "USD": Decimal("129")},
        "sort_order": 30,
    },
]

YEARLY_MONTHS_BILLED = 10
