"""Campaigns (创安行动) as objects: their definition and lifecycle, target registers, grid
workers' visits (走访排查), coverage per grid and day-by-day progress."""
