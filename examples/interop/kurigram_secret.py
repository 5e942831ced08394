"""kurigram with tg-secret (PyPI `tg-secret`, a third-party secret-chat library, through its Pyrogram adapter) as one
user of a secret chat relayed by our test DC; the other user is our `SecretChat` (test-dc/src/secret.rs), driven by
tests/interop_tg_secret.rs, which runs this script and talks to it over stdin/stdout.

The script signs up a number of DC 2 (`+9996627777`, code `22222`; the DC signs an unknown number up on the right
code) with a stock `Client.start()`, so kurigram's updates (`updateEncryption`, `updateNewEncryptedMessage`) reach
tg-secret's raw-update handler. `workers=1`: tg-secret assumes its updates are handled one at a time (its own TODO).

Commands (one per line on stdin), answered on stdout:
  REQUEST <user_id>       tg-secret requests a chat with our user        -> WAITING <chat_id>
  SEND <chat_id> <text>   a text message                                 -> SENT <chat_id> <text>
  REKEY <chat_id>         tg-secret starts a re-key (requestKey)         -> REKEYING <chat_id>
  STATE <chat_id>         tg-secret's view of the chat                   -> STATE <chat_id> <key_fp> <in_seq_no>
                                                                            <out_seq_no> <peer_layer> <exchange_id>
  QUIT
Events, printed as they happen:
  USER <id>                              signed in (our side requests the chat with this id)
  REQUESTED <chat_id> <admin_id>         a request from our user (always accepted)
  READY <chat_id> <key_fp> <visual_hex>  the key exchange finished: fingerprint and the 36-byte visualisation
                                         (SHA1(key)[0..16] || SHA256(key)[0..20]) of tg-secret's key
  GOT <chat_id> <text>                   a text message, in the order tg-secret delivered it
  RESEND_ASKED <chat_id> <start> <end>   tg-secret asked for a resend (the wire seq_nos it sent)
  DISCARDED <chat_id>

Three workarounds, all outside the secret-chat protocol or fixing a tg-secret defect (see README "Interop"):
- `resolve_user`: our user is an auth key that never signed in, so `users.getUsers` does not know it; the DC does
  not check `inputUser.access_hash`, so the id with hash 0 is the peer.
- tg-secret 0.1.3 asks for a resend with its *local* counters (`in_seq_no`, `remote_out_seq_no - 1`), while the
  spec's `decryptedMessageActionResend` carries the sender's wire `out_seq_no`s (2n + x), which is also what its own
  resend answer looks up. Our side refuses the local form (wrong parity: the chat is aborted, ResendInvalid), so the
  request is converted to wire seq_nos here (flag `--no-resend-fix` leaves tg-secret's form, to show the refusal).
- tg-secret 0.1.3 resends a text message with 8 stray bytes (an empty entities vector its flags do not announce);
  our chat rejects that message (strict TL), so `entities_none_when_absent` fixes its reader.

argv: port of DC 2, RSA modulus hex, exponent.
"""
import asyncio
import hashlib
import logging
import sys
import types

import pyrogram
from pyrogram.crypto import rsa
from pyrogram.raw.core import Bytes
from pyrogram.session import Auth
from tg_secret import ChatRequestResult, TelegramSecretClient
from tg_secret.client_adapters.base_adapter import InputPeerUserA
from tg_secret.client_adapters.pyrogram_adapter import PyrogramClientAdapter
from tg_secret.raw.types import DecryptedMessage_45, DecryptedMessage_73, DecryptedMessageActionResend



def entities_none_when_absent(cls):
    # tg-secret 0.1.3's generated `read` gives `entities=[]` when flag 7 is clear, and its `write` sets flag 7 only
    # for a non-empty list but writes the vector whenever `entities is not None`: a message read back (its resend
    # path re-reads what it stored) is written with 8 bytes after its last field, which a strict reader (ours)
    # rejects. Reading `None` for an absent field makes the round trip exact.
    original = cls.read

    def read(b, *args):
        m = original(b, *args)
        if not m.entities:
            m.entities = None
        return m
    cls.read = staticmethod(read)


PHONE = '+9996627777'
CODE = '22222'


def say(*parts):
    print(*parts, flush=True)


def fingerprint(n: int, e: int) -> int:
    n_b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    e_b = e.to_bytes((e.bit_length() + 7) // 8, 'big')
    return int.from_bytes(hashlib.sha1(Bytes(n_b) + Bytes(e_b)).digest()[-8:], 'little', signed=True)


def on_dc(dc_id, port):
    async def load_session(self):
        # Client.load_session for a new session, with our DC in place of Telegram's DC 2 (as kurigram_signin.py).
        await self.storage.open()
        await self.storage.api_id(self.api_id)
        await self.storage.dc_id(dc_id)
        await self.storage.server_address('127.0.0.1')
        await self.storage.port(port)
        await self.storage.date(0)
        await self.storage.test_mode(False)
        await self.storage.auth_key(await Auth(self, dc_id, '127.0.0.1', port, False).create())
        await self.storage.user_id(None)
        await self.storage.is_bot(None)
    return load_session


async def main():
    port = int(sys.argv[1])
    n, e = int(sys.argv[2], 16), int(sys.argv[3])
    resend_fix = '--no-resend-fix' not in sys.argv[4:]
    for cls in (DecryptedMessage_45, DecryptedMessage_73):
        entities_none_when_absent(cls)
    rsa.server_public_keys[fingerprint(n, e)] = rsa.PublicKey(n, e)

    app = pyrogram.Client('secret', api_id=1, api_hash='0123456789abcdef0123456789abcdef', in_memory=True,
                          phone_number=PHONE, phone_code=CODE, workers=1)
    app.load_session = types.MethodType(on_dc(2, port), app)
    adapter = PyrogramClientAdapter(app)

    async def resolve_user(user_id):
        return InputPeerUserA(id=int(user_id), access_hash=0)
    adapter.resolve_user = resolve_user

    secret = TelegramSecretClient(adapter, in_memory=True)
    storage = secret._storage

    if resend_fix:
        async def send_resend_request(chat_id, start_seq_no, end_seq_no):
            chat = await storage.get_chat(chat_id)
            x = 0 if chat.originator else 1  # the peer's out_seq_no parity, as tg-secret checks it on receipt
            start, end = 2 * start_seq_no + x, 2 * end_seq_no + x
            say('RESEND_ASKED', chat_id, start, end)
            await secret._send_service_message(chat_id, DecryptedMessageActionResend(start_seq_no=start,
                                                                                       end_seq_no=end))
        secret._send_resend_request = send_resend_request
    else:
        original = secret._send_resend_request

        async def send_resend_request(chat_id, start_seq_no, end_seq_no):
            say('RESEND_ASKED', chat_id, start_seq_no, end_seq_no)
            await original(chat_id, start_seq_no, end_seq_no)
        secret._send_resend_request = send_resend_request

    @secret.on_request
    async def on_request(chat):
        say('REQUESTED', chat.id, chat.peer_id)
        return ChatRequestResult.ACCEPT

    @secret.on_chat_ready
    async def on_ready(chat):
        c = await storage.get_chat(chat.id)
        visual = hashlib.sha1(c.key).digest()[:16] + hashlib.sha256(c.key).digest()[:20]
        say('READY', chat.id, c.key_fp, visual.hex())

    @secret.on_new_message
    async def on_message(message):
        say('GOT', message.chat.id, message.text)

    @secret.on_chat_deleted
    async def on_deleted(chat, _history):
        say('DISCARDED', chat.id)

    await secret.start()
    await asyncio.wait_for(app.start(), 60)
    # test_dc's relay knows a user once it made a call the relay serves (sign-in calls are another module's), so
    # tg-secret fetches its DH config now (it would at its first request anyway); then our side can request.
    await secret._get_dh_config()
    say('USER', app.me.id)

    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd, *args = line.rstrip('\n').split(' ', 2)
        if cmd == 'QUIT':
            break
        if cmd == 'REQUEST':
            chat = await secret.request_encryption(int(args[0]))
            say('WAITING', chat.id)
        elif cmd == 'SEND':
            chat_id = int(args[0])
            await secret.send_text_message(chat_id, args[1])
            say('SENT', chat_id, args[1])
        elif cmd == 'REKEY':
            await secret.rekey(int(args[0]))
            say('REKEYING', args[0])
        elif cmd == 'STATE':
            c = await storage.get_chat(int(args[0]))
            say('STATE', c.id, c.key_fp, c.in_seq_no, c.out_seq_no, c.peer_layer, c.exchange_id or 0)
        else:
            raise SystemExit(f'unknown command {line!r}')
    await secret.stop()
    await app.stop()
    say('BYE')


logging.basicConfig(level=logging.WARNING)
asyncio.run(main())
