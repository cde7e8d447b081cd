// Loopback TLS reverse proxy for the real-client check: Ring's host names -> the
// simulator, sending Host, X-Forwarded-Proto: https and X-Forwarded-For like a
// production proxy. Usage: node proxy.js LISTEN_PORT SIM_PORT CERT_DIR
const https = require('https'), http = require('http'), fs = require('fs');
const [listenPort, simPort] = process.argv.slice(2, 4).map(Number);
const certDir = process.argv[4];
const tls = { key: fs.readFileSync(certDir + '/key.pem'), cert: fs.readFileSync(certDir + '/cert.pem') };
const srv = https.createServer(tls, (req, res) => {
  const headers = { ...req.headers, 'x-forwarded-proto': 'https', 'x-forwarded-for': req.socket.remoteAddress };
  const p = http.request({ host: '127.0.0.1', port: simPort, method: req.method, path: req.url, headers }, (r) => {
    res.writeHead(r.statusCode, r.headers); r.pipe(res);
  });
  p.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
  req.pipe(p);
});
srv.on('upgrade', (req, sock, head) => {
  const p = http.request({ host: '127.0.0.1', port: simPort, method: req.method, path: req.url, headers: { ...req.headers, 'x-forwarded-proto': 'https' } });
  p.on('upgrade', (r, s2, h2) => {
    let out = `HTTP/1.1 101 Switching Protocols\r\n`;
    for (const [k, v] of Object.entries(r.headers)) out += `${k}: ${v}\r\n`;
    sock.write(out + '\r\n'); if (h2 && h2.length) sock.write(h2); if (head && head.length) s2.write(head);
    s2.pipe(sock); sock.pipe(s2);
  });
  p.on('error', () => sock.destroy());
  p.end();
});
srv.listen(listenPort, '127.0.0.1', () => console.log('proxy listening', listenPort));
