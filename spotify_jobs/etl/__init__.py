"""Data ETL: Spotify streaming-history exports -> clean events, quarantine, daily track statistics."""
