import { createHash } from 'node:crypto';

/**
 * The Lua scripts of RedisStore: each runs atomically on the Redis server, so every check-then-write
 * (owner bounds, the busy flag, ending a turn once, all-or-nothing budgets) holds across instances.
 *
 * Characters are counted in JavaScript (UTF-16 code units, like `String.length`) and passed in:
 * Lua's `#` counts bytes. Keys not known before the script reads a field (the owner's index of a
 * session, the liveness key of an instance) are built from the prefix inside the script, so the
 * store needs one Redis (or a primary with replicas), not Redis Cluster.
 */
export type LuaScript = { name: string; lua: string; sha: string; keys: number };

function script(name: string, keys: number, body: string): LuaScript {
  const lua = `${PRELUDE}\n${body}`;
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex'), keys };
}

const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function num(x)
  return string.format('%.17g', x)
end
local function int(x)
  return string.format('%d', x)
end
-- Forgets the owner's sessions whose expiry has passed (their keys have expired with them).
local function prune(zk, ck, now)
  local gone = redis.call('ZRANGEBYSCORE', zk, '-inf', int(now))
  if #gone == 0 then return end
  for _, id in ipairs(gone) do redis.call('HDEL', ck, id) end
  redis.call('ZREMRANGEBYSCORE', zk, '-inf', int(now))
end
local function usage(zk, ck)
  local chars = 0
  for _, v in ipairs(redis.call('HVALS', ck)) do chars = chars + tonumber(v) end
  return redis.call('ZCARD', zk), chars
end
-- The owner's index lives as long as its longest-lived session.
local function keep_owner(zk, ck)
  local top = redis.call('ZRANGE', zk, -1, -1, 'WITHSCORES')
  if #top == 0 then
    redis.call('DEL', zk, ck)
    return
  end
  local at = int(tonumber(top[2]) + 1000)
  redis.call('PEXPIREAT', zk, at)
  redis.call('PEXPIREAT', ck, at)
end
-- Extends a session's expiry by its ttlMs (any use does, as in MemoryStore), with its owner's index.
-- f: the session's fields, or nil to read them.
local function touch(prefix, sk, mk, id, f)
  if f == nil then
    f = {}
    local h = redis.call('HGETALL', sk)
    if #h == 0 then return end
    for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
  end
  local ttl = tonumber(f.ttlMs)
  redis.call('PEXPIRE', sk, ttl)
  redis.call('PEXPIRE', mk, ttl)
  local zk = prefix .. 'o:' .. f.owner .. ':s'
  local ck = prefix .. 'o:' .. f.owner .. ':c'
  redis.call('ZADD', zk, int(now_ms() + ttl), id)
  redis.call('HSET', ck, id, redis.call('HGET', sk, 'chars'))
  keep_owner(zk, ck)
end
`;

/**
 * KEYS: session hash, history list, owner's sessions (zset), owner's chars (hash).
 * ARGV: id, owner, resumeTokenHash, system message JSON ('' for none), its chars, ttlMs,
 * maxSessionsPerKey, maxCharsPerKey.
 * Returns {'ok'} or {limit, sessions, chars}.
 */
export const CREATE_SESSION = script(
  'createSession',
  4,
  `
local now = now_ms()
prune(KEYS[3], KEYS[4], now)
local sessions, chars = usage(KEYS[3], KEYS[4])
local add = tonumber(ARGV[5])
if sessions >= tonumber(ARGV[7]) then return {'sessions', sessions, chars} end
if chars + add > tonumber(ARGV[8]) then return {'chars', sessions, chars} end
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('ERR session ' .. ARGV[1] .. ' exists already') end
local ttl = tonumber(ARGV[6])
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'resumeTokenHash', ARGV[3], 'chars', ARGV[5], 'activeGenId', '', 'ttlMs', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('DEL', KEYS[2])
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('ZADD', KEYS[3], int(now + ttl), ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[5])
keep_owner(KEYS[3], KEYS[4])
return {'ok'}
`,
);

/**
 * KEYS: session hash, history list. ARGV: prefix, id.
 * Returns nil, or {fields of the hash, messages}; extends the session's expiry (and its owner's index).
 */
export const LOAD_SESSION = script(
  'loadSession',
  2,
  `
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
touch(ARGV[1], KEYS[1], KEYS[2], ARGV[2], f)
return {h, redis.call('LRANGE', KEYS[2], 0, -1)}
`,
);

/** KEYS: session hash, history list. ARGV: prefix, id. */
export const DELETE_SESSION = script(
  'deleteSession',
  2,
  `
local owner = redis.call('HGET', KEYS[1], 'owner')
redis.call('DEL', KEYS[1], KEYS[2])
if owner then
  local zk = ARGV[1] .. 'o:' .. owner .. ':s'
  local ck = ARGV[1] .. 'o:' .. owner .. ':c'
  redis.call('ZREM', zk, ARGV[2])
  redis.call('HDEL', ck, ARGV[2])
end
return 1
`,
);

/** KEYS: owner's sessions (zset), owner's chars (hash). Returns {sessions, chars}. */
export const OWNER_USAGE = script(
  'ownerUsage',
  2,
  `
prune(KEYS[1], KEYS[2], now_ms())
local sessions, chars = usage(KEYS[1], KEYS[2])
return {sessions, chars}
`,
);

/**
 * KEYS: session hash, history list, generation hash, generation stream.
 * ARGV: prefix, genId, sessionId, owner, instanceId, user message JSON, transcriptTtlMs, runningTtlMs.
 * Returns {'ok'}, {'not_found'} or {'busy', activeGenId}. A session whose active generation is
 * no longer stored at all (expired) is not busy. Extends the session's expiry.
 */
export const BEGIN_TURN = script(
  'beginTurn',
  4,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
touch(ARGV[1], KEYS[1], KEYS[2], ARGV[3])
local active = redis.call('HGET', KEYS[1], 'activeGenId')
if active and active ~= '' and redis.call('EXISTS', ARGV[1] .. 'g:' .. active) == 1 then
  return {'busy', active}
end
redis.call('HSET', KEYS[1], 'activeGenId', ARGV[2])
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('HSET', KEYS[3], 'sessionId', ARGV[3], 'owner', ARGV[4], 'instanceId', ARGV[5], 'user', ARGV[6],
  'status', 'running', 'transcriptTtlMs', ARGV[7])
redis.call('PEXPIRE', KEYS[3], ARGV[8])
-- An empty stream (added, then trimmed away), so chunks are added with NOMKSTREAM and inherit its expiry.
redis.call('XADD', KEYS[4], 'MAXLEN', '0', '*', 'seq', '0')
redis.call('PEXPIRE', KEYS[4], ARGV[8])
return {'ok'}
`,
);

/**
 * Ends a turn (endTurn), or an orphan (settleOrphan, with a dead instance to check).
 * KEYS: session hash, history list, generation hash, generation stream.
 * ARGV: prefix, sessionId, genId, outcome JSON, user message JSON ('' adds no turn), answer message
 * JSON, chars added, [instanceId that must be gone, id of the last chunk read ('' if none)].
 * Extends the session's expiry.
 * Returns 'ok'; 'done' when the generation had ended already (the first end wins: nothing is
 * written); for an orphan also 'running' (its instance is alive), 'gone' (unknown) or 'moved' (a
 * chunk came after the one read).
 */
export const FINISH_TURN = script(
  'finishTurn',
  4,
  `
local status = redis.call('HGET', KEYS[3], 'status')
if status == 'done' then return 'done' end
if ARGV[8] and ARGV[8] ~= '' then
  if not status then return 'gone' end
  if redis.call('EXISTS', ARGV[1] .. 'i:' .. ARGV[8]) == 1 then return 'running' end
  local last = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)
  local lastId = ''
  if last[1] then lastId = last[1][1] end
  if lastId ~= ARGV[9] then return 'moved' end
end
if status then
  local ttl = redis.call('HGET', KEYS[3], 'transcriptTtlMs')
  redis.call('HSET', KEYS[3], 'status', 'done', 'outcome', ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('PEXPIRE', KEYS[4], ttl)
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'activeGenId') == ARGV[3] then
    redis.call('HSET', KEYS[1], 'activeGenId', '')
  end
  if ARGV[5] ~= '' then
    redis.call('RPUSH', KEYS[2], ARGV[5], ARGV[6])
    redis.call('HINCRBY', KEYS[1], 'chars', ARGV[7])
  end
  -- Also counts the new characters in the owner's index.
  touch(ARGV[1], KEYS[1], KEYS[2], ARGV[2])
end
return 'ok'
`,
);

const BUDGET_PRELUDE = `
local MINUTE = 60000
local IDLE_TTL = 120000
local HELD_TTL = 3600000
local NAMES = {'requests', 'tokens', 'resumes'}
-- The bucket's level refilled to now (capacity cap, refilling cap per minute); full when new.
-- The same arithmetic as TokenBucket, in the same order (both are IEEE doubles).
local function level_of(name, cap, now)
  local level = tonumber(redis.call('HGET', KEYS[1], name .. ':level'))
  local at = tonumber(redis.call('HGET', KEYS[1], name .. ':at'))
  if level == nil or at == nil then return cap, now end
  -- Instances' clocks may differ a little: time never runs backwards for a bucket.
  if now <= at then return math.min(cap, level), at end
  return math.min(cap, level + (now - at) * cap / MINUTE), now
end
-- A key's buckets start full (like MemoryBudgets on first sight of a key).
local function create(name, cap, now)
  if redis.call('HEXISTS', KEYS[1], name .. ':level') == 1 then return end
  redis.call('HSET', KEYS[1], name .. ':level', num(cap), name .. ':at', num(now), name .. ':cap', num(cap))
end
-- Refills the bucket and stores it. Only the buckets MemoryBudgets would touch are refilled, so
-- that the sums (in floating point) are the same.
local function refill(name, cap, now)
  local level, at = level_of(name, cap, now)
  redis.call('HSET', KEYS[1], name .. ':level', num(level), name .. ':at', num(at), name .. ':cap', num(cap))
  return level
end
local function wait_ms(amount, level, cap)
  if cap <= 0 or amount <= level then return 0 end
  return math.ceil((amount - level) * MINUTE / cap)
end
-- Generations at once: a count per instance, counted only while the instance is alive (a crashed
-- instance's slots are freed when its liveness key expires).
local function concurrent_of(prefix)
  local total = 0
  local h = redis.call('HGETALL', KEYS[1])
  for i = 1, #h, 2 do
    local field = h[i]
    if string.sub(field, 1, 2) == 'c:' then
      local n = tonumber(h[i + 1]) or 0
      if n > 0 and redis.call('EXISTS', prefix .. 'i:' .. string.sub(field, 3)) == 1 then
        total = total + n
      else
        redis.call('HDEL', KEYS[1], field)
      end
    end
  end
  return total
end
local function expire(held)
  if held > 0 then redis.call('PEXPIRE', KEYS[1], HELD_TTL) else redis.call('PEXPIRE', KEYS[1], IDLE_TTL) end
end
`;

function budgetScript(name: string, body: string): LuaScript {
  return script(name, 1, `${BUDGET_PRELUDE}\n${body}`);
}

/**
 * KEYS: budget hash. ARGV: prefix, instanceId, now, '1' to take a concurrent slot, the concurrent
 * limit, then per bucket (requests, tokens, resumes) its per-minute limit and the amount (0: none).
 * Returns {} when taken, or {dimension, retryAfterMs}.
 */
export const BUDGET_TAKE = budgetScript(
  'budgetTake',
  `
local prefix, instance, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local held = concurrent_of(prefix)
local caps, amounts, levels = {}, {}, {}
for i, name in ipairs(NAMES) do
  caps[i], amounts[i] = tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i])
  create(name, caps[i], now)
end
if ARGV[4] == '1' and held >= tonumber(ARGV[5]) then
  expire(held)
  return {'concurrent', 1000}
end
for i, name in ipairs(NAMES) do
  if amounts[i] > 0 then
    levels[i] = refill(name, caps[i], now)
    local wait = wait_ms(math.min(amounts[i], caps[i]), levels[i], caps[i])
    if wait > 0 then
      expire(held)
      return {name, wait}
    end
  end
end
for i, name in ipairs(NAMES) do
  if amounts[i] > 0 then redis.call('HSET', KEYS[1], name .. ':level', num(levels[i] - amounts[i])) end
end
if ARGV[4] == '1' then
  redis.call('HINCRBY', KEYS[1], 'c:' .. instance, 1)
  held = held + 1
end
expire(held)
return {}
`,
);

/**
 * KEYS: budget hash. ARGV: prefix, instanceId, now, '1' to give back a concurrent slot, tokens
 * (> 0 charges more, < 0 refunds, never above the capacity).
 */
export const BUDGET_SETTLE = budgetScript(
  'budgetSettle',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local prefix, instance, now, tokens = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
if ARGV[4] == '1' then
  local field = 'c:' .. instance
  local n = tonumber(redis.call('HGET', KEYS[1], field)) or 0
  if n > 1 then redis.call('HSET', KEYS[1], field, n - 1) else redis.call('HDEL', KEYS[1], field) end
end
local cap = tonumber(redis.call('HGET', KEYS[1], 'tokens:cap'))
if cap ~= nil then
  local level, at = level_of('tokens', cap, now)
  if tokens < 0 then level = math.min(cap, level - tokens) else level = level - tokens end
  redis.call('HSET', KEYS[1], 'tokens:level', num(level), 'tokens:at', num(at))
end
expire(concurrent_of(prefix))
return 1
`,
);

/**
 * KEYS: budget hash. ARGV: prefix, now, the per-minute limits of requests, tokens, resumes.
 * Returns {remaining, resetMs} of each bucket (as strings) and the concurrent count. Like
 * MemoryBudgets.peek it creates the buckets (full) of a key not seen before.
 */
export const BUDGET_PEEK = budgetScript(
  'budgetPeek',
  `
local now = tonumber(ARGV[2])
local out = {}
for i, name in ipairs(NAMES) do
  local cap = tonumber(ARGV[2 + i])
  create(name, cap, now)
  local level = refill(name, cap, now)
  local remaining = math.floor(level)
  if remaining < 0 then remaining = 0 end
  out[#out + 1] = num(remaining)
  out[#out + 1] = num(wait_ms(cap, level, cap))
end
local held = concurrent_of(ARGV[1])
expire(held)
out[#out + 1] = held
return out
`,
);
