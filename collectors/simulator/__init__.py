"""A simulated fleet of mining devices that speaks their real protocols."""
