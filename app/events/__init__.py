"""Matchmaking events (对接活动): the plan contract (``flask event solve``) over the pure solver."""
