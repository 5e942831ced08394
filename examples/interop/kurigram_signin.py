"""kurigram's Client signs in against our test DCs (three DCs in one process, `dc::start_cluster`): as a bot
(`Client(bot_token=...).start()`), and with a phone number of DC 2 asked on DC 1: kurigram follows `PHONE_MIGRATE_2`
itself (a new auth key on DC 2, from the DC list of our `help.getConfig`), is refused a wrong code, signs up, and a
second Client signs in by its own `start()` with the code; a number with a two-step verification password signs in
by `start()` with the password (kurigram's SRP proof against the DC's). Run by tests/interop_kurigram.rs.

kurigram starts every new session on Telegram's DC 2 address: `load_session` is replaced by one that starts on our
DC 1 (the same steps, our address), and the DC's RSA key is added to kurigram's key table, as in kurigram_check.py.

argv: port of DC 1, port of DC 2, port of DC 3, RSA modulus hex, exponent.
Prints one `OK <check>` line per passed check; exits non-zero on failure.
"""
import asyncio
import hashlib
import logging
import sys
import types

import pyrogram
from pyrogram.crypto import rsa
from pyrogram.errors import PhoneCodeInvalid
from pyrogram.raw.core import Bytes
from pyrogram.session import Auth

PHONE = '+9996627777'
PHONE_2FA = '+9996625678'
CODE = '22222'


def ok(check):
    print('OK', check, flush=True)


def fingerprint(n: int, e: int) -> int:
    n_b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    e_b = e.to_bytes((e.bit_length() + 7) // 8, 'big')
    return int.from_bytes(hashlib.sha1(Bytes(n_b) + Bytes(e_b)).digest()[-8:], 'little', signed=True)


def on_dc(dc_id, port):
    async def load_session(self):
        # Client.load_session for a new session, with our DC in place of Telegram's DC 2.
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


def client(name, port, **kw):
    c = pyrogram.Client(name, api_id=1, api_hash='0123456789abcdef0123456789abcdef', in_memory=True,
                        no_updates=True, **kw)
    c.load_session = types.MethodType(on_dc(1, port), c)
    return c


async def main():
    ports = [int(p) for p in sys.argv[1:4]]
    n, e = int(sys.argv[4], 16), int(sys.argv[5])
    rsa.server_public_keys[fingerprint(n, e)] = rsa.PublicKey(n, e)

    # 1. A bot.
    bot = client('bot', ports[0], bot_token='654321:kurigram_bot')
    await asyncio.wait_for(bot.start(), 60)
    me = await bot.get_me()
    assert me.is_bot and me.id == 654321, me
    ok('bot_sign_in')
    await bot.stop()

    # 2. A new number of DC 2, asked on DC 1.
    new = client('new', ports[0])
    await asyncio.wait_for(new.connect(), 60)
    sent = await new.send_code(PHONE)
    assert await new.storage.dc_id() == 2, await new.storage.dc_id()
    ok('phone_migrate_followed')
    try:
        await new.sign_in(PHONE, sent.phone_code_hash, '11111')
        raise SystemExit('a wrong code was accepted')
    except PhoneCodeInvalid:
        ok('wrong_code_refused')
    r = await new.sign_in(PHONE, sent.phone_code_hash, CODE)
    assert r is False, r
    ok('sign_up_required')
    user = await new.sign_up(PHONE, sent.phone_code_hash, 'Kuri', 'Gram')
    assert user.first_name == 'Kuri' and not user.is_bot, user
    ok('sign_up')
    await new.disconnect()

    # 3. The account signs in by a stock Client.start() (phone and code given): migrate, code, signed in.
    again = client('again', ports[0], phone_number=PHONE, phone_code=CODE)
    await asyncio.wait_for(again.start(), 60)
    me = await again.get_me()
    assert me.id == user.id and await again.storage.dc_id() == 2, me
    ok('phone_code_sign_in')
    await again.stop()

    # 4. Two-step verification: 9996625678 has the password `hunter2`. It signs up first (on DC 2 directly), then a
    #    stock Client.start() with the password: SESSION_PASSWORD_NEEDED, account.getPassword and kurigram's SRP.
    first = client('first', ports[1])
    first.load_session = types.MethodType(on_dc(2, ports[1]), first)
    await asyncio.wait_for(first.connect(), 60)
    sent = await first.send_code(PHONE_2FA)
    assert await first.sign_in(PHONE_2FA, sent.phone_code_hash, CODE) is False
    two_step = await first.sign_up(PHONE_2FA, sent.phone_code_hash, 'Two', 'Step')
    await first.disconnect()
    twofa = client('twofa', ports[0], phone_number=PHONE_2FA, phone_code=CODE, password='hunter2')
    await asyncio.wait_for(twofa.start(), 60)
    me = await twofa.get_me()
    assert me.id == two_step.id, me
    ok('password_sign_in')
    await twofa.stop()


logging.basicConfig(level=logging.WARNING)
asyncio.run(main())
