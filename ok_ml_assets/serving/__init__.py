"""The serving side: an ingester from the publication topics into an online key-value store, and a read API by key."""
