"""Real-client check: unmodified python ring_doorbell against `ring-bridge sim`
behind the TLS proxy. Only the HTTP session is ours: a resolver mapping Ring's
host names to 127.0.0.1 and an SSL context trusting the proxy's certificate."""
import asyncio, ssl, socket, sys
import aiohttp
from aiohttp.abc import AbstractResolver
from ring_doorbell import Auth, Ring, Requires2FAError

class Loopback(AbstractResolver):
    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}]
    async def close(self):
        pass

async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[1])
    conn = aiohttp.TCPConnector(resolver=Loopback(), ssl=ctx)
    async with aiohttp.ClientSession(connector=conn) as session:
        auth = Auth("ring-bridge-fidelity/1.0", http_client_session=session)
        try:
            await auth.async_fetch_token("demo@ring-bridge.local", "demo-password")
            print("FAIL: no 2FA asked")
        except Requires2FAError:
            print("ok 2FA requested")
        await auth.async_fetch_token("demo@ring-bridge.local", "demo-password", "123456")
        print("ok token")
        ring = Ring(auth)
        await ring.async_create_session()
        await ring.async_update_data()
        devs = ring.devices()
        cams = devs.all_devices
        print("ok devices", len(cams), [d.name for d in cams])
        front = next(d for d in devs.doorbots if d.id == 10001)
        hist = await front.async_history(limit=10)
        print("ok history", len(hist))
        ready = next(e for e in hist if (e.get("recording") or {}).get("status") == "ready")
        url = await front.async_recording_url(ready["id"])
        print("ok recording url", url[:60])
        async with session.get(url) as r:
            body = await r.read()
            print("ok mp4" if r.status == 200 and body[4:8] == b"ftyp" else f"FAIL mp4 {r.status}", len(body))
        snap = await front.async_get_snapshot()
        print("ok snapshot jpeg" if snap and snap[:2] == b"\xff\xd8" else f"FAIL snapshot {snap!r:.40}")
        await front.async_update_health_data()
        print("ok health", front.wifi_name)
        drive = next(d for d in devs.stickup_cams if d.id == 10003)
        await drive.async_set_lights("on")
        await ring.async_update_devices()
        print("ok light", drive.lights)
        await drive.async_set_lights("off")

asyncio.run(main())
