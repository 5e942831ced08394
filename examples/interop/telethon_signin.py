"""Telethon's TelegramClient signs in against our test DCs (three DCs in one process, `dc::start_cluster`), the way
an application does: `client.start(bot_token=...)`, `client.start(phone=..., code_callback=...)` (Telethon follows
`PHONE_MIGRATE_2` from DC 1 itself, by its `_switch_dc` and a new auth key on DC 2), and `client.qr_login()` with
the token accepted by another signed-in client (Telethon follows `auth.loginTokenMigrateTo` itself), and with a
two-step verification password (Telethon's SRP proof against the DC's `SrpServer`). Run by
tests/interop_telethon_signin.rs.

argv: port of DC 1, port of DC 2, port of DC 3, RSA modulus hex, exponent.
Prints one `OK <check>` line per passed check; exits non-zero on failure.
"""
import asyncio
import logging
import sys

import rsa as pyrsa
from telethon import TelegramClient, errors, functions, types
from telethon.crypto import rsa
from telethon.sessions import StringSession

PHONE = '+9996621234'
PHONE_2FA = '+9996625678'
CODE = '22222'


def ok(check):
    print('OK', check, flush=True)


def client(dc_id, ports):
    # A fresh session, pointed at one of our DCs (Telethon's default would be Telegram's DC 2). Telethon 1.x
    # caches help.getConfig per class: clear it so each client reads our DC list.
    TelegramClient._config = None
    c = TelegramClient(StringSession(), api_id=1, api_hash='0123456789abcdef0123456789abcdef',
                       connection_retries=1, retry_delay=0, request_retries=3, timeout=20)
    c.session.set_dc(dc_id, '127.0.0.1', ports[dc_id - 1])
    return c


async def main():
    ports = [int(p) for p in sys.argv[1:4]]
    n_hex, e = sys.argv[4], int(sys.argv[5])
    rsa.add_key(pyrsa.PublicKey(int(n_hex, 16), e).save_pkcs1(), old=False)

    # 1. A bot: any `<id>:<secret>` signs in bot <id>.
    bot = client(1, ports)
    await asyncio.wait_for(bot.start(bot_token='123456:AAE-telethon_bot'), 60)
    me = await bot.get_me()
    assert me.bot and me.id == 123456, me
    ok('bot_sign_in')
    cfg = await bot(functions.help.GetConfigRequest())
    assert cfg.this_dc == 1 and cfg.test_mode, cfg
    assert sorted((o.id, o.port) for o in cfg.dc_options) == [(1, ports[0]), (2, ports[1]), (3, ports[2])], cfg
    ok('get_config_lists_dcs')
    assert await bot.log_out()
    ok('bot_log_out')

    # 2. A new number of DC 2, asked on DC 1: Telethon follows PHONE_MIGRATE_2. Telethon refuses to sign up
    #    itself (since 1.25), so the sign-up is its raw auth.signUp.
    new = client(1, ports)
    await asyncio.wait_for(new.connect(), 60)
    sent = await new.send_code_request(PHONE)
    assert new.session.dc_id == 2, new.session.dc_id
    ok('phone_migrate_followed')
    try:
        await new.sign_in(PHONE, '11111')
        raise SystemExit('a wrong code was accepted')
    except errors.PhoneCodeInvalidError:
        ok('wrong_code_refused')
    try:
        await new.sign_in(PHONE, CODE)
        raise SystemExit('a new number signed in without signing up')
    except errors.PhoneNumberUnoccupiedError:
        ok('sign_up_required')
    auth = await new(functions.auth.SignUpRequest(PHONE, sent.phone_code_hash, 'Tele', 'Thon'))
    assert isinstance(auth, types.auth.Authorization), auth
    user_id = auth.user.id
    me = await new.get_me()
    assert me.id == user_id and me.first_name == 'Tele' and not me.bot, me
    ok('sign_up')

    # 3. The account signs in from a fresh session on DC 1 by Telethon's own start(): migrate, code, signed in.
    phone = client(1, ports)
    await asyncio.wait_for(phone.start(phone=PHONE, code_callback=lambda: CODE), 60)
    me = await phone.get_me()
    assert me.id == user_id and phone.session.dc_id == 2, (me, phone.session.dc_id)
    ok('phone_code_sign_in')

    # 4. QR login on DC 1, accepted by the signed-in phone client: Telethon gets updateLoginToken, asks again, is
    #    told to migrate to DC 2, and imports the token there.
    qr_client = client(1, ports)
    await asyncio.wait_for(qr_client.connect(), 60)
    qr = await qr_client.qr_login()
    waiter = asyncio.ensure_future(qr.wait(30))
    await asyncio.sleep(0.5)
    accepted = await phone(functions.auth.AcceptLoginTokenRequest(qr.token))
    assert isinstance(accepted, types.Authorization), accepted
    user = await asyncio.wait_for(waiter, 30)
    assert user.id == user_id and qr_client.session.dc_id == 2, (user, qr_client.session.dc_id)
    me = await qr_client.get_me()
    assert me.id == user_id, me
    ok('qr_login_migrated')

    # 5. Two-step verification: 9996625678 has the password `hunter2` (the DC keeps its SRP verifier). Sign up
    #    first (raw auth.signUp again), then Telethon's start() with the password: SESSION_PASSWORD_NEEDED, its
    #    account.getPassword and its own SRP proof in auth.checkPassword.
    first = client(2, ports)
    await asyncio.wait_for(first.connect(), 60)
    sent = await first.send_code_request(PHONE_2FA)
    try:
        await first.sign_in(PHONE_2FA, CODE)
    except errors.PhoneNumberUnoccupiedError:
        pass
    auth = await first(functions.auth.SignUpRequest(PHONE_2FA, sent.phone_code_hash, 'Two', 'Step'))
    two_step_id = auth.user.id
    twofa = client(1, ports)
    try:
        await asyncio.wait_for(twofa.start(phone=PHONE_2FA, code_callback=lambda: CODE, password='wrong'), 60)
        raise SystemExit('a wrong password was accepted')
    except errors.PasswordHashInvalidError:
        ok('wrong_password_refused')
    me = await twofa.sign_in(phone=PHONE_2FA, password='hunter2')
    assert me.id == two_step_id, me
    assert (await twofa.get_me()).id == two_step_id
    ok('password_sign_in')

    for c in (bot, new, phone, qr_client, first, twofa):
        await c.disconnect()


logging.basicConfig(level=logging.WARNING)
asyncio.run(main())
