"""What every app of the portal uses and none owns: the Redis client, system parameters, the snapshot publisher."""
