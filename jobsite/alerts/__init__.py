"""Job alerts: subscriptions (the person side) and the alerts sent to them."""
