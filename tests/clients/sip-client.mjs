// A real WebRTC SIP client (JsSIP over wss), as the Electron softphone uses it.
//
// usage: node sip-client.mjs --url wss://127.0.0.54:8443/ws --realm webrtc-genesys \
//          --user 1002:secret [--user 1003:secret ...] --action register|unregister|hold
//          [--expires 600] [--timeout 20] [--reconnect]
//
// Prints one JSON line per event: {"t": <unix ms>, "dn": "1002", "event": "registered", ...}
//   register   - register every user, print the outcome, exit (0 if all registered).
//   unregister - register, then unregister (Expires: 0), exit.
//   hold       - register and stay registered; reconnect and re-register when the socket
//                closes (as the Electron app does). SIGTERM/stdin end: exit without unregistering.
import JsSIP from 'jssip';
import WebSocket from 'ws';

globalThis.WebSocket = WebSocket;
JsSIP.debug.disable('JsSIP:*');

function parseArgs(argv) {
  const args = { users: [], action: 'register', expires: 600, timeout: 20, reconnect: false, realm: undefined, origin: undefined };
  for (let i = 0; i < argv.length; i += 1) {
    const key = argv[i];
    const next = () => argv[++i];
    if (key === '--url') args.url = next();
    else if (key === '--user') args.users.push(next());
    else if (key === '--action') args.action = next();
    else if (key === '--expires') args.expires = Number(next());
    else if (key === '--timeout') args.timeout = Number(next());
    else if (key === '--reconnect') args.reconnect = true;
    else if (key === '--realm') args.realm = next();
    else throw new Error(`unknown argument ${key}`);
  }
  if (!args.url || args.users.length === 0) throw new Error('--url and --user are required');
  return args;
}

const args = parseArgs(process.argv.slice(2));
const host = new URL(args.url).hostname;
const emit = (dn, event, extra = {}) => {
  process.stdout.write(`${JSON.stringify({ t: Date.now(), dn, event, ...extra })}\n`);
};

function startUser(spec) {
  // DN:password, split at the first ':' only (a password may hold ':').
  const cut = spec.indexOf(':');
  const [dn, password] = [spec.slice(0, cut), spec.slice(cut + 1)];
  const socket = new JsSIP.WebSocketInterface(args.url);
  const ua = new JsSIP.UA({
    sockets: [socket],
    uri: `sip:${dn}@${host}`,
    password,
    realm: args.realm,
    register: false,
    register_expires: args.expires,
    session_timers: false,
    connection_recovery_min_interval: 1,
    connection_recovery_max_interval: 2,
    user_agent: 'webrtc-genesys-test-client',
  });
  const state = { dn, ua, registered: false, done: false, outcome: null };
  ua.on('connected', () => {
    emit(dn, 'connected');
    if (!state.done) ua.register();
  });
  ua.on('disconnected', (e) => {
    emit(dn, 'disconnected', { error: Boolean(e && e.error) });
    state.registered = false;
    if (!args.reconnect && args.action !== 'hold' && !state.done) finish(state, 'disconnected');
  });
  ua.on('registered', (e) => {
    state.registered = true;
    const expires = e && e.response ? e.response.getHeader('Expires') : null;
    emit(dn, 'registered', { expires });
    if (args.action === 'register') finish(state, 'registered');
    else if (args.action === 'unregister' && !state.unregistering) {
      state.unregistering = true;
      ua.unregister({ all: false });
    }
  });
  ua.on('unregistered', () => {
    state.registered = false;
    emit(dn, 'unregistered');
    if (args.action === 'unregister') finish(state, 'unregistered');
  });
  ua.on('registrationFailed', (e) => {
    const status = e && e.response ? e.response.status_code : null;
    emit(dn, 'registrationFailed', { cause: e ? e.cause : null, status });
    if (args.action !== 'hold') finish(state, 'failed');
  });
  ua.start();
  return state;
}

const states = args.users.map(startUser);
let exiting = false;

function finish(state, outcome) {
  if (state.done) return;
  state.done = true;
  state.outcome = outcome;
  if (states.every((s) => s.done)) exit();
}

function exit() {
  if (exiting) return;
  exiting = true;
  const wanted = args.action === 'unregister' ? 'unregistered' : 'registered';
  const ok = states.every((s) => s.outcome === wanted);
  // Leave without ua.stop(), which would unregister: the test decides what happens next.
  setTimeout(() => process.exit(ok ? 0 : 1), 50);
}

if (args.action === 'hold') {
  const stop = () => {
    for (const s of states) { s.done = true; s.outcome = s.registered ? 'registered' : 'failed'; }
    emit('*', 'stopping');
    // Drop the sockets without an un-REGISTER, like a killed app.
    for (const s of states) {
      try { s.ua.transport.socket._ws.terminate(); } catch { /* already closed */ }
    }
    setTimeout(() => process.exit(0), 50);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
} else {
  setTimeout(() => {
    for (const s of states) if (!s.done) { s.outcome = 'timeout'; emit(s.dn, 'timeout'); }
    exiting = false;
    exit();
  }, args.timeout * 1000);
}
