// GramJS (npm `telegram`: its MTProtoSender, Authenticator, MTProtoState and connection classes) against our test
// DC. Run by tests/interop_gramjs.rs; needs `npm install telegram@2.26.22` in this directory (node_modules is not
// committed).
//
// GramJS's TelegramClient needs an api_id/api_hash and a login; none of that is involved here. The DC's RSA key is
// injected into GramJS's fingerprint table (telegram/crypto/RSA `_serverKeys`).
//
// argv: port, transport (full | abridged | obfuscated | websocket | mtproxy), RSA modulus hex, exponent[, MTProxy secret hex].
// Prints one `OK <check>` line per passed check, `KEY <hex>` with the auth key and `HANDSHAKE_RETRIES <n>`; exits
// non-zero on failure.
//
// GramJS stores the DH result g^ab with leading zero bytes dropped (Helpers.getByteArray), so about 1 handshake in
// 256 ends with a 255-byte key whose hash differs from the DC's: "Step 3 invalid new nonce hash". GramJS then starts
// a new handshake on the same connection (MTProtoSender.connect's retries). Such retries are allowed here only when
// GramJS really made a short key, and counted.
"use strict";

const crypto = require("crypto");
const bigInt = require("big-integer");
const { Api } = require("telegram");
const { MTProtoSender } = require("telegram/network/MTProtoSender");
const { ConnectionTCPAbridged, ConnectionTCPFull, ConnectionTCPObfuscated } = require("telegram/network/connection");
const { ConnectionTCPMTProxyAbridged } = require("telegram/network/connection/TCPMTProxy");
const { _serverKeys } = require("telegram/crypto/RSA");
const { AuthKey } = require("telegram/crypto/AuthKey");
const { doAuthentication } = require("telegram/network/Authenticator");
const { PromisedNetSockets, PromisedWebSockets } = require("telegram/extensions");
const { Logger, LogLevel } = require("telegram/extensions/Logger");
const { LAYER } = require("telegram/tl/AllTLObjects");
const { serializeBytes } = require("telegram/tl/generationHelpers");
const { readBigIntFromBuffer, sleep } = require("telegram/Helpers");

const DC_ID = 2;

function assert(cond, what) {
  if (!cond) {
    throw new Error("check failed: " + what);
  }
}

function ok(check) {
  console.log("OK " + check);
}

// The key's fingerprint as GramJS keys its table: the low 64 bits of SHA1(TL bytes n || TL bytes e), signed.
function fingerprint(nHex, e) {
  const n = Buffer.from(nHex, "hex");
  const eBuf = Buffer.from(bigInt(e).toString(16).padStart(6, "0"), "hex");
  const h = crypto.createHash("sha1").update(Buffer.concat([serializeBytes(n), serializeBytes(eBuf)])).digest();
  return readBigIntFromBuffer(h.subarray(12, 20), true, true);
}

// The shape of a real client's first call: invokeWithLayer(initConnection(query)).
function wrapped(query) {
  return new Api.InvokeWithLayer({
    layer: LAYER,
    query: new Api.InitConnection({
      apiId: 1,
      deviceModel: "interop",
      systemVersion: "Linux",
      appVersion: "1.0",
      langCode: "en",
      systemLangCode: "en",
      langPack: "",
      query,
    }),
  });
}

function withTimeout(promise, ms, what) {
  let t;
  const timer = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error("timed out: " + what)), ms);
  });
  return Promise.race([promise, timer]).finally(() => clearTimeout(t));
}

async function calls(sender, prefix, large) {
  const cfg = await withTimeout(
    sender.send(wrapped(new Api.messages.GetDhConfig({ version: 0, randomLength: 16 }))),
    30000,
    "getDhConfig",
  );
  assert(cfg instanceof Api.messages.DhConfig, "DhConfig: " + cfg);
  assert(cfg.g === 3 && cfg.p.length === 256 && cfg.random.length === 16, "dh config fields");
  ok(prefix + "init_connection_get_dh_config");

  // A method the test DC does not implement (help.getPremiumPromo), wrapped as TelegramClient wraps its first call.
  let failed = null;
  try {
    await withTimeout(sender.send(wrapped(new Api.help.GetPremiumPromo())), 30000, "getPremiumPromo");
  } catch (e) {
    failed = e;
  }
  assert(failed && failed.code === 400 && failed.errorMessage === "INPUT_METHOD_INVALID", "rpc_error: " + failed);
  ok(prefix + "unknown_method_rpc_error");

  const pingId = bigInt("123456789abc", 16);
  const pong = await withTimeout(sender.send(new Api.Ping({ pingId })), 30000, "ping");
  assert(pong instanceof Api.Pong && pong.pingId.equals(pingId), "pong: " + pong);
  ok(prefix + "ping_pong");

  if (large) {
    // GramJS's uploadFile uses 512 KiB parts: one message of that size, and the DC's boolTrue back.
    const done = await withTimeout(
      sender.send(new Api.upload.SaveFilePart({ fileId: bigInt(7), filePart: 0, bytes: crypto.randomBytes(512 * 1024) })),
      60000,
      "saveFilePart",
    );
    assert(done === true, "saveFilePart: " + done);
    // 256 KiB of zeros: GramJS sends it as gzip_packed.
    const zeros = await withTimeout(
      sender.send(new Api.upload.SaveFilePart({ fileId: bigInt(8), filePart: 0, bytes: Buffer.alloc(256 * 1024) })),
      60000,
      "saveFilePart zeros",
    );
    assert(zeros === true, "gzip saveFilePart: " + zeros);
    // Eight requests queued at once: GramJS's MessagePacker puts them in one msg_container.
    const res = await withTimeout(
      Promise.all(
        [1, 2, 3, 4, 5, 6, 7, 8].map((i) => sender.send(new Api.messages.GetDhConfig({ version: 0, randomLength: i }))),
      ),
      30000,
      "container",
    );
    assert(res.map((r) => r.random.length).join() === "1,2,3,4,5,6,7,8", "container results");
    ok(prefix + "large_gzip_container");
  }
}

function connection(cls, port, proxy, socket) {
  return new cls({
    ip: "127.0.0.1",
    port,
    dcId: DC_ID,
    loggers: new Logger(LogLevel.ERROR),
    proxy,
    socket,
  });
}

async function main() {
  const [port, transport, nHex, e, secretHex] = [
    Number(process.argv[2]),
    process.argv[3],
    process.argv[4],
    Number(process.argv[5]),
    process.argv[6],
  ];
  const fp = fingerprint(nHex, e);
  _serverKeys.set(fp.toString(), { n: bigInt(nHex, 16), e });

  const cls = {
    full: ConnectionTCPFull,
    abridged: ConnectionTCPAbridged,
    obfuscated: ConnectionTCPObfuscated,
    // GramJS's web transport: the obfuscated stream in binary WebSocket frames to ws://ip:port/apiws.
    websocket: ConnectionTCPObfuscated,
    mtproxy: ConnectionTCPMTProxyAbridged,
  }[transport];
  const socket = transport === "websocket" ? PromisedWebSockets : PromisedNetSockets;
  assert(cls, "unknown transport " + transport);
  // GramJS's MTProxy connection goes to the proxy's address; ip/port above are ignored for it.
  const proxy = transport === "mtproxy" ? { ip: "127.0.0.1", port, secret: secretHex, MTProxy: true } : undefined;
  const errors = [];
  const client = { _errorHandler: async (err) => errors.push(err), networkSocket: socket };
  const opts = { logger: new Logger(LogLevel.NONE), dcId: DC_ID, retries: 4, delay: 100, client };

  // Watch GramJS's own handshake (MTProtoSender calls the module's export at call time): which attempts failed,
  // and whether GramJS had dropped a leading zero byte of the key in that attempt.
  const auth = require("telegram/network/Authenticator");
  let shortKey = false;
  const setKey = AuthKey.prototype.setKey;
  AuthKey.prototype.setKey = function (value) {
    if (Buffer.isBuffer(value) && value.length < 256) {
      shortKey = true;
    }
    return setKey.call(this, value);
  };
  let retries = 0;
  const unexpected = [];
  auth.doAuthentication = async (...args) => {
    shortKey = false;
    try {
      return await doAuthentication(...args);
    } catch (err) {
      if (shortKey && /invalid new nonce hash/.test(String(err))) {
        retries += 1;
      } else {
        unexpected.push(err);
      }
      throw err;
    }
  };

  // 1. The handshake, by GramJS's Authenticator (RSA_PAD, p_q_inner_data without dc) inside MTProtoSender.connect.
  const sender = new MTProtoSender(null, opts);
  assert(await withTimeout(sender.connect(connection(cls, port, proxy, socket)), 60000, "connect"), "handshake");
  const key = sender.authKey.getKey();
  assert(key && key.length === 256, "auth key");
  console.log("KEY " + key.toString("hex"));
  console.log("HANDSHAKE_RETRIES " + retries);
  assert(unexpected.length === 0, "handshake failed: " + unexpected.join("; "));
  // connect() reported each failed attempt to the client's error handler; those are accounted for above.
  assert(errors.length === retries, "errors during connect: " + errors.join("; "));
  errors.length = 0;
  ok("handshake");

  await calls(sender, "", true);

  // 2. GramJS's own reconnect: a new TCP connection and a new session id (MTProtoState.reset) under the same key.
  const firstSession = sender._state.id;
  sender.reconnect();
  for (let i = 0; i < 300 && (sender.isReconnecting || !sender._transportConnected()); i++) {
    await sleep(50);
  }
  assert(!sender.isReconnecting && sender._transportConnected(), "reconnected");
  assert(!sender._state.id.equals(firstSession), "new session id");
  await calls(sender, "restart_", false);
  await sender.disconnect();

  // 3. A new sender with the stored key: no handshake.
  const stored = new AuthKey();
  await stored.setKey(key);
  const again = new MTProtoSender(stored, opts);
  assert(await withTimeout(again.connect(connection(cls, port, proxy, socket)), 60000, "reconnect"), "connect with key");
  await calls(again, "reconnect_", false);
  assert(again.authKey.getKey().equals(key), "same key");
  await again.disconnect();
  assert(errors.length === 0, "GramJS reported errors: " + errors.join("; "));
  ok("reconnect_same_key");
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
