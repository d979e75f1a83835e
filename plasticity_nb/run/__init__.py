"""What a run is (its config, phases and settings) and what it carries while it trains: no training code."""
