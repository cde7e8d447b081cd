// Real-client check preload (a hosts-file equivalent for this process only): Ring's
// host names resolve to 127.0.0.1.
const dns = require('dns');
const orig = dns.lookup;
const ring = (h) => /(^|\.)ring\.com$|rings\.solutions$|a2z\.com$/.test(h);
dns.lookup = function (host, opts, cb) {
  if (typeof opts === 'function') { cb = opts; opts = {}; }
  if (ring(host)) {
    if (opts && opts.all) return process.nextTick(cb, null, [{ address: '127.0.0.1', family: 4 }]);
    return process.nextTick(cb, null, '127.0.0.1', 4);
  }
  return orig.call(this, host, opts, cb);
};
const dp = dns.promises;
const origP = dp.lookup;
dp.lookup = async (host, opts) => ring(host) ? (opts && opts.all ? [{ address: '127.0.0.1', family: 4 }] : { address: '127.0.0.1', family: 4 }) : origP(host, opts);
