//! The Lua scripts that read and write the directory. Each runs atomically in Redis, so a
//! check and the write it guards (room, then a reservation) can never be split by another
//! node's call.
//!
//! Every script takes the key prefix as `ARGV[1]` and reads the time with Redis' `TIME`:
//! leases, reservation expiries and "is it live" are all judged by one clock, Redis',
//! so clock skew between nodes cannot make a dead lobby look alive or a live one dead.
//! (Redis 7 replicates a script's effects, not the script, so `TIME` before a write is
//! allowed.) Scripts answer with one JSON string (`cjson.encode`), parsed in `directory.rs`.
//!
//! The keys are computed inside the scripts from the prefix, not passed as `KEYS`: fine
//! for one Redis (Debian's 7.0 standalone), not for Redis Cluster. See the crate doc for
//! the layout.

use std::sync::LazyLock;

use redis::Script;

/// Helpers shared by every script (prepended to each).
const PRELUDE: &str = r#"
local P = ARGV[1]
local SLOT_SPAN = 4194304
local PENDING_BASE = 2097152
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function is_live(key, now)
  local s = redis.call('ZSCORE', P .. 'lobbies', key)
  return s and tonumber(s) > now
end
local function lobby_info(key)
  local h = redis.call('HMGET', P .. 'lobby:' .. key,
    'node', 'lobby', 'gid', 'name', 'players', 'max', 'private', 'draining', 'pending')
  if not h[1] then return nil end
  return { node = h[1], lobby = tonumber(h[2]), gid = tonumber(h[3]), name = h[4],
    players = tonumber(h[5]), max = tonumber(h[6]), private = (h[7] == '1'),
    draining = (h[8] == '1'), pending = (h[9] == '1') }
end
local function reserved(key, now)
  return redis.call('ZCOUNT', P .. 'resv:' .. key, '(' .. now, '+inf')
end
local function node_record(node)
  local j = redis.call('GET', P .. 'node:' .. node)
  if not j then return nil end
  return cjson.decode(j)
end
-- A pending lobby is shown only while its node is live and not draining (the node's
-- renewals do not mark it: it is not one of the node's lobbies yet).
local function pending_shown(l)
  if not l.pending then return true end
  local n = node_record(l.node)
  return n ~= nil and not n.draining
end
local function drop_code(key)
  local code = redis.call('HGET', P .. 'lobby:' .. key, 'code')
  if code and code ~= '' and redis.call('GET', P .. 'code:' .. code) == key then
    redis.call('DEL', P .. 'code:' .. code)
  end
end
local function remove_lobby(key)
  drop_code(key)
  redis.call('DEL', P .. 'lobby:' .. key, P .. 'resv:' .. key)
  redis.call('ZREM', P .. 'lobbies', key)
  redis.call('ZREM', P .. 'public', key)
end
local function add_pending(node, member, score, ttl)
  local p = P .. 'pending:' .. node
  redis.call('ZADD', p, score, member)
  if redis.call('PTTL', p) < ttl then redis.call('PEXPIRE', p, ttl) end
end
-- The lobby key named by mode 'gid' (cluster id: public lobbies only, as JoinLobby),
-- 'code' (private lobbies only) or 'key'; nil if none.
local function resolve(mode, v)
  local key = nil
  if mode == 'gid' then
    local gid = tonumber(v)
    local node = redis.call('GET', P .. 'slot:' .. math.floor(gid / SLOT_SPAN))
    if not node then return nil end
    key = node .. '/' .. (gid % SLOT_SPAN)
    local l = lobby_info(key)
    if not l or l.gid ~= gid or l.private then return nil end
  elseif mode == 'code' then
    key = redis.call('GET', P .. 'code:' .. v)
    if not key then return nil end
    local l = lobby_info(key)
    if not l or not l.private then return nil end
  else
    key = v
  end
  return key
end
-- A reservation's join options (JSON array of [key, value] pairs; '' for none), kept
-- beside its record for as long, until the lobby's node redeems it.
local function keep_options(rid, options, ttl)
  if options ~= '' then redis.call('SET', P .. 'rsvopt:' .. rid, options, 'PX', ttl) end
end
local function try_reserve(key, now, rid, ttl, lease, options)
  if not is_live(key, now) then return nil, 'NOT_FOUND' end
  local l = lobby_info(key)
  if not l then return nil, 'NOT_FOUND' end
  if l.draining then return nil, 'DRAINING' end
  local n = node_record(l.node)
  if not n then return nil, 'NOT_FOUND' end
  if n.draining then return nil, 'DRAINING' end
  if l.players + reserved(key, now) >= l.max then return nil, 'FULL' end
  -- A pending lobby lives as long as the reservations in it.
  if l.pending then redis.call('ZADD', P .. 'lobbies', 'GT', now + ttl, key) end
  local r = P .. 'resv:' .. key
  redis.call('ZADD', r, now + ttl, rid)
  redis.call('PEXPIRE', r, ttl + lease)
  add_pending(l.node, key .. '|' .. rid, now + ttl, ttl + lease)
  redis.call('SET', P .. 'rsv:' .. rid, key, 'PX', ttl)
  keep_options(rid, options, ttl)
  return { kind = 'join', node = l.node, lobby = l.lobby, gid = l.gid,
    url = n.public_url, expires = now + ttl }
end
"#;

/// Renews this node's lease and rewrites all of its lobbies.
///
/// ARGV: prefix, node id, lease ms, slot hint (0: none), node record JSON, a fresh secret
/// (used only if Redis has none), draining ('0'/'1'), number of slots, number of lobbies,
/// then six per lobby: local id, name, players, max, private ('0'/'1'), code
/// ('' for none); then the number of counted holds and two per hold: lobby key,
/// reservation id (redeemed seats whose players the counts include: their holds go).
/// Answers `{slot, now, expired, secret}`.
///
/// Cost is what keeps Redis responsive: a lobby whose hash already holds its static
/// fields costs one `HSET` of the three that change (players, gid, draining); only a new
/// lobby, or every lobby after Redis lost its data, gets the full write. The sorted sets
/// are written in batches, and expired reservations are found through the node's
/// `pending` set, not by visiting every lobby.
const RENEW: &str = r#"
local node = ARGV[2]
local lease = tonumber(ARGV[3])
local hint = tonumber(ARGV[4])
local draining = ARGV[7] == '1'
local slots = tonumber(ARGV[8])
local count = tonumber(ARGV[9])
local now = now_ms()
local exp = now + lease

-- The slot: keep ours while we hold it; after a lapse take it back if still free, else
-- the lowest free one. A slot key and this node's lobbies share one lease, so a slot is
-- only ever taken over once the previous holder's lobbies are invisible.
local slot = nil
if hint > 0 then
  local holder = redis.call('GET', P .. 'slot:' .. hint)
  if holder == node or (not holder) then slot = hint end
end
if not slot then
  for s = 1, slots do
    if redis.call('SET', P .. 'slot:' .. s, node, 'NX', 'PX', lease) then slot = s; break end
  end
end
if not slot then return redis.error_reply('TICKSYNC every node slot is taken') end
redis.call('SET', P .. 'slot:' .. slot, node, 'PX', lease)

local record = cjson.decode(ARGV[5])
record.slot = slot
redis.call('SET', P .. 'node:' .. node, cjson.encode(record), 'PX', lease)
redis.call('ZADD', P .. 'nodes', exp, node)

local BATCH = 500
local keep = {}
local keys = {}
local live_args = {}
local public_args = {}
local unlisted = {}
local function flush(zset, args, cmd)
  if #args > 0 then redis.call(cmd, P .. zset, unpack(args)) end
end
for i = 0, count - 1 do
  local o = 10 + i * 6
  local id = ARGV[o]
  local key = node .. '/' .. id
  keep[key] = true
  keys[#keys + 1] = key
  local gid = slot * SLOT_SPAN + tonumber(id)
  local players = tonumber(ARGV[o + 2])
  local private = ARGV[o + 4]
  local code = ARGV[o + 5]
  local h = P .. 'lobby:' .. key
  if redis.call('HSET', h, 'players', players, 'gid', gid, 'draining', ARGV[7]) > 0 then
    redis.call('HSET', h, 'node', node, 'lobby', id, 'name', ARGV[o + 1], 'max', ARGV[o + 3],
      'private', private, 'code', code)
    -- A pending lobby (made by quick-join) is this node's own from now on.
    redis.call('HDEL', h, 'pending')
  end
  live_args[#live_args + 1] = exp
  live_args[#live_args + 1] = key
  if private == '0' and not draining then
    public_args[#public_args + 1] = players * 4294967296 + (4294967295 - gid)
    public_args[#public_args + 1] = key
  else
    unlisted[#unlisted + 1] = key
  end
  if code ~= '' then
    if draining then
      if redis.call('GET', P .. 'code:' .. code) == key then redis.call('DEL', P .. 'code:' .. code) end
    else
      redis.call('SET', P .. 'code:' .. code, key, 'PX', lease)
    end
  end
  if #live_args >= 2 * BATCH then flush('lobbies', live_args, 'ZADD'); live_args = {} end
  if #public_args >= 2 * BATCH then flush('public', public_args, 'ZADD'); public_args = {} end
  if #unlisted >= BATCH then flush('public', unlisted, 'ZREM'); unlisted = {} end
end
flush('lobbies', live_args, 'ZADD')
flush('public', public_args, 'ZADD')
flush('public', unlisted, 'ZREM')

-- Holds of redeemed seats whose players the counts above include: the seat is counted
-- once, as a player, from now on.
local holds = 10 + count * 6
for i = 1, tonumber(ARGV[holds]) do
  local key = ARGV[holds + 2 * i - 1]
  local rid = ARGV[holds + 2 * i]
  redis.call('ZREM', P .. 'resv:' .. key, 'u:' .. rid)
  redis.call('ZREM', P .. 'pending:' .. node, 'u:' .. key .. '|' .. rid)
end

-- Reservations that ran out: counted (seats, not holds or create tickets) and dropped
-- from their lobby's set.
local pending = P .. 'pending:' .. node
local expired = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', pending, '-inf', now)) do
  local held = string.sub(m, 1, 2) == 'u:'
  local key, rid = string.match(held and string.sub(m, 3) or m, '^(.*)|(.*)$')
  if key and string.sub(key, -2) ~= '/0' then
    if not held then expired = expired + 1 end
    redis.call('ZREM', P .. 'resv:' .. key, held and ('u:' .. rid) or rid)
  end
end
redis.call('ZREMRANGEBYSCORE', pending, '-inf', now)

-- Lobbies this node listed before and no longer has: gone now, not at their lease's end.
local set = P .. 'nodelobbies:' .. node
for _, key in ipairs(redis.call('SMEMBERS', set)) do
  if not keep[key] then remove_lobby(key) end
end
redis.call('DEL', set)
for i = 1, #keys, BATCH do
  redis.call('SADD', set, unpack(keys, i, math.min(i + BATCH - 1, #keys)))
end
if #keys > 0 then redis.call('PEXPIRE', set, lease) end

local secret = redis.call('GET', P .. 'secret')
if not secret then
  redis.call('SET', P .. 'secret', ARGV[6])
  secret = ARGV[6]
end
return cjson.encode({ slot = slot, now = now, expired = expired, secret = secret })
"#;

/// Public live lobbies, fullest first, ties by cluster id.
///
/// ARGV: prefix, most lobbies to answer, most entries to scan. Answers a JSON array.
const LIST: &str = r#"
local limit = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local now = now_ms()
local out = {}
local start = 0
while #out < limit and start < cap do
  local keys = redis.call('ZREVRANGE', P .. 'public', start, start + 99)
  if #keys == 0 then break end
  for _, key in ipairs(keys) do
    if #out >= limit then break end
    if is_live(key, now) then
      local l = lobby_info(key)
      if l and not l.private and not l.draining and pending_shown(l) then
        l.reserved = reserved(key, now)
        out[#out + 1] = l
      end
    end
  end
  start = start + 100
end
if #out == 0 then return '[]' end
return cjson.encode(out)
"#;

/// One live lobby of a node that is not draining, by cluster id, private code or key.
///
/// ARGV: prefix, mode ('gid', 'code' or 'key'), value. Answers the lobby or `null`.
const LOOKUP: &str = r#"
local now = now_ms()
local key = resolve(ARGV[2], ARGV[3])
if not key or not is_live(key, now) then return 'null' end
local l = lobby_info(key)
if not l or l.draining or not pending_shown(l) then return 'null' end
l.reserved = reserved(key, now)
return cjson.encode(l)
"#;

/// Reserves a seat in one lobby if players + live reservations < max.
///
/// ARGV: prefix, mode ('gid', 'code' or 'key'), value, reservation id, ttl ms, lease ms,
/// join options (JSON, '' for none).
/// Answers the reservation, or `{err}`: NOT_FOUND, DRAINING or FULL.
const RESERVE: &str = r#"
local now = now_ms()
local key = resolve(ARGV[2], ARGV[3])
if not key then return cjson.encode({ err = 'NOT_FOUND' }) end
local res, err = try_reserve(key, now, ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7])
if not res then return cjson.encode({ err = err }) end
return cjson.encode(res)
"#;

/// Quick-join: a seat in the fullest public live lobby with room, or else a seat in a new
/// *pending* lobby on the least-loaded live node that is not draining.
///
/// A pending lobby is listed at once, like any lobby, so the next quick-join (from any
/// node) takes a seat in it rather than making one more: its id is allocated here
/// (local ids from `PENDING_BASE` up are the directory's, below are the nodes' own), its
/// hash carries `pending = 1` and no `draining` field (so the owner's first renewal that
/// includes it does the full write, which drops the flag), and its lease in `P:lobbies`
/// is the latest expiry of the reservations in it. It is not in `P:nodelobbies`, so the
/// owner's renewals leave it alone until the owner opens it (on the first redemption) and
/// publishes it; never opened (the node died), it expires with its last reservation.
///
/// ARGV: prefix, reservation id, ttl ms, lease ms, most entries to scan, join options
/// (JSON, '' for none: also the creation options of a pending lobby made here), seats of
/// a new lobby, its name until its node publishes it.
/// Answers `{kind = 'join', ...}` or `{err = 'NO_NODE'}`.
const QUICK: &str = r#"
local rid = ARGV[2]
local ttl = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local options = ARGV[6]
local size = tonumber(ARGV[7])
local name = ARGV[8]
local now = now_ms()
local start = 0
while start < cap do
  local keys = redis.call('ZREVRANGE', P .. 'public', start, start + 99)
  if #keys == 0 then break end
  for _, key in ipairs(keys) do
    local res = try_reserve(key, now, rid, ttl, lease, options)
    if res then return cjson.encode(res) end
  end
  start = start + 100
end
local best = nil
for _, node in ipairs(redis.call('ZRANGEBYSCORE', P .. 'nodes', '(' .. now, '+inf')) do
  local n = node_record(node)
  if n and n.slot and not n.draining then
    -- Players it reported, plus seats reserved or held on it: concurrent creates spread
    -- over the nodes instead of all landing on one.
    local load = n.load + redis.call('ZCOUNT', P .. 'pending:' .. node, '(' .. now, '+inf')
    if not best or load < best.load or (load == best.load and node < best.node) then
      best = { node = node, load = load, slot = n.slot }
    end
  end
end
if not best then return cjson.encode({ err = 'NO_NODE' }) end
local id = nil
for _ = 1, 8 do
  local c = redis.call('INCR', P .. 'pendid:' .. best.node)
  -- Only a counter: after a day unused it starts again (EXISTS guards the ids in use).
  redis.call('PEXPIRE', P .. 'pendid:' .. best.node, 86400000)
  local candidate = PENDING_BASE + (c % (PENDING_BASE - 1))
  if redis.call('EXISTS', P .. 'lobby:' .. best.node .. '/' .. candidate) == 0 then
    id = candidate
    break
  end
end
if not id then return cjson.encode({ err = 'NO_NODE' }) end
local key = best.node .. '/' .. id
local gid = best.slot * SLOT_SPAN + id
redis.call('HSET', P .. 'lobby:' .. key, 'node', best.node, 'lobby', id, 'gid', gid,
  'name', name, 'players', 0, 'max', size, 'private', '0', 'code', '', 'pending', '1')
redis.call('ZADD', P .. 'lobbies', now + ttl, key)
redis.call('ZADD', P .. 'public', 4294967295 - gid, key)
local res, err = try_reserve(key, now, rid, ttl, lease, options)
if not res then return cjson.encode({ err = err }) end
return cjson.encode(res)
"#;

/// Redeems a reservation once. Its seat stays held (as `u:<id>`) for `hold` ms from now,
/// until the owning node's next renewal reports the player in its true count.
///
/// ARGV: prefix, reservation id, expected key (`node/lobby`), hold ms.
/// Answers `{ok, options, pending}` (the join options kept with it, '' for none, read
/// once; `pending`: the seats of the pending lobby the node is to open, else absent) or
/// `{err}`: GONE (expired or unknown), USED or MISMATCH.
const REDEEM: &str = r#"
local rid = ARGV[2]
local key = ARGV[3]
local hold = tonumber(ARGV[4])
local now = now_ms()
local v = redis.call('GET', P .. 'rsv:' .. rid)
if not v then return cjson.encode({ err = 'GONE' }) end
if v == 'U' then return cjson.encode({ err = 'USED' }) end
if v ~= key then return cjson.encode({ err = 'MISMATCH' }) end
-- A pending lobby: the node opens it now (with these seats), so it must still be live,
-- and stays listed until the node's renewal publishes it.
local pending = nil
local l = lobby_info(key)
if l and l.pending then
  if not is_live(key, now) then return cjson.encode({ err = 'GONE' }) end
  redis.call('ZADD', P .. 'lobbies', 'GT', now + hold, key)
  pending = l.max
end
redis.call('SET', P .. 'rsv:' .. rid, 'U', 'KEEPTTL')
-- Held for `hold` from now whatever the reservation's own expiry: until the owner's next
-- renewal counts the player, this is the only thing keeping the seat taken.
local node = string.match(key, '^(.*)/[0-9]+$')
redis.call('ZREM', P .. 'pending:' .. node, key .. '|' .. rid)
add_pending(node, 'u:' .. key .. '|' .. rid, now + hold, 2 * hold)
if string.sub(key, -2) ~= '/0' then
  local r = P .. 'resv:' .. key
  redis.call('ZREM', r, rid)
  redis.call('ZADD', r, now + hold, 'u:' .. rid)
  if redis.call('PTTL', r) < 2 * hold then redis.call('PEXPIRE', r, 2 * hold) end
end
local okey = P .. 'rsvopt:' .. rid
local options = redis.call('GET', okey) or ''
redis.call('DEL', okey)
return cjson.encode({ ok = true, options = options, pending = pending })
"#;

/// Gives back the seat (or, for a create ticket, the load) a redeemed reservation holds:
/// its player was not seated (the game refused the join, or the lobby closed), so the
/// seat is free at once rather than at the hold's end.
///
/// ARGV: prefix, key (`node/lobby`), reservation id. Answers `{released}`: 1, or 0 if the
/// hold had already ended.
const RELEASE: &str = r#"
local key = ARGV[2]
local rid = ARGV[3]
local node = string.match(key, '^(.*)/[0-9]+$')
if not node then return cjson.encode({ released = 0 }) end
local n = redis.call('ZREM', P .. 'pending:' .. node, 'u:' .. key .. '|' .. rid)
if string.sub(key, -2) ~= '/0' then
  redis.call('ZREM', P .. 'resv:' .. key, 'u:' .. rid)
end
return cjson.encode({ released = n })
"#;

/// Removes a node and all of its lobbies (its last act before exiting).
///
/// ARGV: prefix, node id. Answers `{lobbies}`: how many were removed.
const DEREGISTER: &str = r#"
local node = ARGV[2]
local set = P .. 'nodelobbies:' .. node
local keys = redis.call('SMEMBERS', set)
for _, key in ipairs(keys) do remove_lobby(key) end
local n = node_record(node)
if n and n.slot and redis.call('GET', P .. 'slot:' .. n.slot) == node then
  redis.call('DEL', P .. 'slot:' .. n.slot)
end
redis.call('DEL', set, P .. 'node:' .. node, P .. 'pending:' .. node)
redis.call('ZREM', P .. 'nodes', node)
return cjson.encode({ lobbies = #keys })
"#;

/// Removes entries whose lease is over (readers already skip them; this frees memory).
///
/// ARGV: prefix, most lobbies to remove. Answers `{lobbies, nodes}`.
const CLEANUP: &str = r#"
local now = now_ms()
local dead = redis.call('ZRANGEBYSCORE', P .. 'lobbies', '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, key in ipairs(dead) do remove_lobby(key) end
local nodes = redis.call('ZREMRANGEBYSCORE', P .. 'nodes', '-inf', now)
return cjson.encode({ lobbies = #dead, nodes = nodes })
"#;

/// Live nodes with their records and lobby counts.
///
/// ARGV: prefix. Answers a JSON array.
const NODES: &str = r#"
local now = now_ms()
local out = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', P .. 'nodes', '(' .. now, '+inf')) do
  local n = node_record(node)
  if n then
    n.node = node
    out[#out + 1] = n
  end
end
if #out == 0 then return '[]' end
return cjson.encode(out)
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// The renewal script.
pub(crate) static RENEW_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(RENEW));
/// The listing script.
pub(crate) static LIST_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(LIST));
/// The lookup script.
pub(crate) static LOOKUP_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(LOOKUP));
/// The seat reservation script.
pub(crate) static RESERVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(RESERVE));
/// The quick-join script.
pub(crate) static QUICK_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(QUICK));
/// The redemption script.
pub(crate) static REDEEM_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(REDEEM));
/// The release script.
pub(crate) static RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(RELEASE));
/// The deregistration script.
pub(crate) static DEREGISTER_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(DEREGISTER));
/// The cleanup script.
pub(crate) static CLEANUP_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(CLEANUP));
/// The node listing script.
pub(crate) static NODES_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(NODES));
