"""Redis as every jobsite process uses it: the client (REDIS_URL, the embedded server, or the primary that
REDIS_SENTINELS name) and the embedded server with its reaper, Lua scripts registered once per connection, and the
clock every machine shares (the Redis server's)."""
