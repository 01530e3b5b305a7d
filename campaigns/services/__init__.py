"""Everything that changes campaigns, buyers and wallets lives here; views, the admin and tasks call these."""
