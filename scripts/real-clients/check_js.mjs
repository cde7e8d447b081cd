// Real-client check: unmodified ring-client-api against `ring-bridge sim` behind
// the TLS proxy (run by run.sh with dns-loopback.js preloaded).
import { RingApi } from 'ring-client-api';
import { RingRestClient } from 'ring-client-api/rest-client';
import https from 'https';
(async () => {
  const rest = new RingRestClient({ email: 'demo@ring-bridge.local', password: 'demo-password' });
  try { await rest.getCurrentAuth(); console.log('FAIL no 2FA'); } catch (e) { console.log('ok 2FA requested:', rest.promptFor2fa); }
  const auth = await rest.getAuth('123456');
  console.log('ok token');
  const api = new RingApi({ refreshToken: auth.refresh_token, cameraStatusPollingSeconds: 0 });
  const cams = await api.getCameras();
  console.log('ok cameras', cams.map((c) => c.name).join(', '));
  const front = cams.find((c) => c.id === 10001);
  const events = await front.getEvents({ limit: 10 });
  console.log('ok history', events.events.length);
  const ready = events.events.find((e) => e.recording_status === 'ready');
  const url = await front.getRecordingUrl(ready.ding_id_str);
  console.log('ok recording url', url.slice(0, 60));
  await new Promise((res) => https.get(url, (r) => { const c = []; r.on('data', (d) => c.push(d)); r.on('end', () => { const b = Buffer.concat(c); console.log(r.statusCode === 200 && b.slice(4, 8).toString() === 'ftyp' ? 'ok mp4' : 'FAIL mp4 ' + r.statusCode, b.length); res(); }); }));
  const snap = await front.getSnapshot();
  console.log(snap[0] === 0xff && snap[1] === 0xd8 ? 'ok snapshot jpeg' : 'FAIL snapshot');
  const health = await front.getHealth();
  console.log('ok health', health.wifi_name);
  const drive = cams.find((c) => c.id === 10003);
  await drive.setLight(true);
  console.log('ok light');
  await drive.setLight(false);
  const call = await front.startLiveCall();
  let v = 0, a = 0;
  call.onVideoRtp.subscribe(() => v++);
  call.onAudioRtp.subscribe(() => a++);
  await new Promise((r) => setTimeout(r, 8000));
  console.log(v > 100 ? 'ok live call' : 'FAIL live call', 'video rtp', v, 'audio rtp', a);
  call.stop();
  await new Promise((r) => setTimeout(r, 1000));
  api.disconnect();
  process.exit(0);
})().catch((e) => { console.log('FAIL', e && e.stack || e); process.exit(1); });
