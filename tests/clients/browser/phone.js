// A WebRTC softphone for a real browser: JsSIP over wss, audio from the browser's (fake) device.
//
// Bundled with JsSIP by esbuild (npm run build:phone -> browser/dist/phone.bundle.js) and loaded
// by tests/lab/browser.py into a page it serves itself on the gateway's https origin, so the
// gateway accepts the WebSocket's Origin and navigator.mediaDevices exists (secure context).
//
// One phone (one DN) per page. The page exposes window.phone, driven with page.evaluate:
//   phone.start({url, dn, password, realm?, expires?, autoAnswer?, answerDelayMs?})
//   phone.call(target) / answer() / hangup() / hold() / unhold() / sendDtmf(digits)
//   phone.unregister() (Promise<boolean>) / stop()
//   phone.stats() (Promise) / phone.state() / phone.events (array of {t, type, detail})
//   phone.startLoopback() / stopLoopback(): audio between two local RTCPeerConnections (self-test)
// Nothing here throws because the network failed: failures become events.
import JsSIP from 'jssip';

JsSIP.debug.disable('JsSIP:*');

const MEDIA_CONSTRAINTS = { audio: true, video: false };
const PC_CONFIG = { iceServers: [] }; // no STUN: the lab is loopback only
const STATUS_NAMES = Object.fromEntries(
  Object.entries(JsSIP.RTCSession.C)
    .filter(([key]) => key.startsWith('STATUS_'))
    .map(([key, value]) => [value, key.slice('STATUS_'.length).toLowerCase()]),
);

function statusCodeOf(message) {
  return message && typeof message.status_code === 'number' ? message.status_code : null;
}

function reasonOf(message) {
  return message && typeof message.reason_phrase === 'string' ? message.reason_phrase : null;
}

// The audio numbers of one RTCPeerConnection's getStats(), whichever side it is.
async function collectStats(pc) {
  const out = {
    packetsSent: 0,
    bytesSent: 0,
    packetsReceived: 0,
    bytesReceived: 0,
    packetsLost: 0,
    jitter: null,
    audioLevel: null,
    totalSamplesReceived: 0,
    codec: null,
    dtlsState: null,
    iceState: pc ? pc.iceConnectionState : null,
    connectionState: pc ? pc.connectionState : null,
    selectedCandidatePair: null,
  };
  if (!pc) return out;
  const report = await pc.getStats();
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  let transport = null;
  let codecId = null;
  report.forEach((s) => {
    const kind = s.kind || s.mediaType;
    if (s.type === 'outbound-rtp' && kind === 'audio') {
      out.packetsSent += s.packetsSent || 0;
      out.bytesSent += s.bytesSent || 0;
      codecId = codecId || s.codecId;
    } else if (s.type === 'inbound-rtp' && kind === 'audio') {
      out.packetsReceived += s.packetsReceived || 0;
      out.bytesReceived += s.bytesReceived || 0;
      out.packetsLost += s.packetsLost || 0;
      out.totalSamplesReceived += s.totalSamplesReceived || 0;
      if (typeof s.jitter === 'number') out.jitter = s.jitter;
      if (typeof s.audioLevel === 'number') out.audioLevel = s.audioLevel;
      if (s.codecId) codecId = s.codecId;
    } else if (s.type === 'transport' && !transport) {
      transport = s;
    }
  });
  const codec = codecId ? byId.get(codecId) : null;
  if (codec) out.codec = `${codec.mimeType}/${codec.clockRate}${codec.channels ? `/${codec.channels}` : ''}`;
  let pair = null;
  if (transport) {
    out.dtlsState = transport.dtlsState || null;
    if (transport.iceState) out.iceState = transport.iceState;
    pair = transport.selectedCandidatePairId ? byId.get(transport.selectedCandidatePairId) : null;
  }
  if (!pair) {
    report.forEach((s) => {
      if (!pair && s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated) pair = s;
    });
  }
  if (pair) {
    const describe = (c) => (c ? { address: c.address || c.ip, port: c.port, protocol: c.protocol, type: c.candidateType } : null);
    out.selectedCandidatePair = {
      state: pair.state,
      local: describe(byId.get(pair.localCandidateId)),
      remote: describe(byId.get(pair.remoteCandidateId)),
    };
  }
  return out;
}

const phone = {
  ready: true,
  jssipVersion: JsSIP.version,
  events: [],
  ua: null,
  session: null,
  config: null,
  _host: null,
  _loopback: null,
  _watched: new WeakSet(),

  record(type, detail = {}) {
    this.events.push({ t: Date.now(), type, detail });
  },

  start({ url, dn, password, realm, expires = 600, autoAnswer = 'answer', answerDelayMs = 0 } = {}) {
    if (!url || !dn || !password) throw new TypeError('start() needs url, dn and password');
    if (!['answer', 'reject', 'none'].includes(autoAnswer)) throw new TypeError(`autoAnswer: ${autoAnswer}`);
    if (this.ua) this.stop();
    this._host = new URL(url).hostname;
    this.config = { url, dn, realm: realm || null, expires, autoAnswer, answerDelayMs };
    const socket = new JsSIP.WebSocketInterface(url);
    const ua = new JsSIP.UA({
      sockets: [socket],
      uri: `sip:${dn}@${this._host}`,
      password,
      realm: realm || undefined,
      register: true,
      register_expires: expires,
      session_timers: false,
      connection_recovery_min_interval: 2,
      connection_recovery_max_interval: 30,
      user_agent: 'webrtc-genesys-browser-phone',
    });
    this.ua = ua;
    ua.on('connecting', (e) => this.record('connecting', { attempts: e && e.attempts }));
    ua.on('connected', () => this.record('connected'));
    ua.on('disconnected', (e) => this.record('disconnected', { error: Boolean(e && e.error), code: e && e.code, reason: e && e.reason }));
    ua.on('registered', (e) => this.record('registered', { expires: e && e.response ? e.response.getHeader('Expires') : null }));
    ua.on('unregistered', (e) => this.record('unregistered', { cause: (e && e.cause) || null }));
    ua.on('registrationFailed', (e) => this.record('registrationFailed', {
      cause: e && e.cause, statusCode: statusCodeOf(e && e.response), reason: reasonOf(e && e.response),
    }));
    ua.on('newRTCSession', (e) => this._onSession(e));
    try {
      ua.start();
    } catch (err) {
      this.record('startError', { message: String(err && err.message ? err.message : err) });
    }
    return this.state();
  },

  _onSession({ originator, session, request }) {
    const direction = originator === 'remote' ? 'incoming' : 'outgoing';
    const busy = Boolean(direction === 'incoming' && this.session && !this.session.isEnded());
    this.record('newRTCSession', {
      direction,
      from: session.remote_identity ? session.remote_identity.uri.toString() : null,
      to: session.local_identity ? session.local_identity.uri.toString() : null,
      callId: request ? request.call_id : null,
      busy,
    });
    if (busy) {
      session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
      return;
    }
    this.session = session;
    session.on('progress', (e) => this.record('progress', { originator: e.originator, statusCode: statusCodeOf(e.response) }));
    session.on('accepted', (e) => this.record('accepted', { originator: e.originator, statusCode: statusCodeOf(e.response) }));
    session.on('confirmed', (e) => this.record('confirmed', { originator: e.originator }));
    session.on('ended', (e) => this.record('ended', { originator: e.originator, cause: e.cause, statusCode: statusCodeOf(e.message) }));
    session.on('failed', (e) => this.record('failed', {
      originator: e.originator, cause: e.cause, statusCode: statusCodeOf(e.message), reason: reasonOf(e.message),
    }));
    session.on('hold', (e) => this.record('hold', { originator: e.originator }));
    session.on('unhold', (e) => this.record('unhold', { originator: e.originator }));
    session.on('newDTMF', (e) => this.record('newDTMF', {
      originator: e.originator, tone: e.dtmf ? e.dtmf.tone : null, duration: e.dtmf ? e.dtmf.duration : null, transport: 'INFO',
    }));
    session.on('getusermediafailed', (err) => this.record('mediaError', { stage: 'getUserMedia', message: String(err) }));
    session.on('peerconnection:createofferfailed', (err) => this.record('mediaError', { stage: 'createOffer', message: String(err) }));
    session.on('peerconnection:createanswerfailed', (err) => this.record('mediaError', { stage: 'createAnswer', message: String(err) }));
    session.on('peerconnection:setlocaldescriptionfailed', (err) => this.record('mediaError', { stage: 'setLocalDescription', message: String(err) }));
    session.on('peerconnection:setremotedescriptionfailed', (err) => this.record('mediaError', { stage: 'setRemoteDescription', message: String(err) }));
    session.on('peerconnection', (e) => this._watch(e.peerconnection));
    if (session.connection) this._watch(session.connection);
    if (direction === 'incoming') this._autoHandle(session);
  },

  _autoHandle(session) {
    const mode = this.config.autoAnswer;
    if (mode === 'reject') {
      session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
    } else if (mode === 'answer') {
      setTimeout(() => {
        if (this.session === session && !session.isEnded() && !session.isEstablished()) this._answer(session);
      }, this.config.answerDelayMs || 0);
    }
  },

  _answer(session) {
    try {
      session.answer({ mediaConstraints: MEDIA_CONSTRAINTS, pcConfig: PC_CONFIG });
    } catch (err) {
      this.record('mediaError', { stage: 'answer', message: String(err && err.message ? err.message : err) });
      throw err;
    }
  },

  // Remote audio plays into the page's <audio> element; PC state changes become events.
  _watch(pc) {
    if (!pc || this._watched.has(pc)) return;
    this._watched.add(pc);
    pc.addEventListener('track', (e) => {
      const audio = document.getElementById('remote');
      if (!audio || e.track.kind !== 'audio') return;
      audio.srcObject = e.streams && e.streams[0] ? e.streams[0] : new MediaStream([e.track]);
      audio.play().catch(() => {});
    });
    pc.addEventListener('iceconnectionstatechange', () => this.record('iceState', { state: pc.iceConnectionState }));
    pc.addEventListener('connectionstatechange', () => this.record('pcState', { state: pc.connectionState }));
  },

  _requireSession() {
    if (!this.session || this.session.isEnded()) throw new Error('no active session');
    return this.session;
  },

  call(target) {
    if (!this.ua) throw new Error('call() before start()');
    const uri = String(target).startsWith('sip:') ? String(target) : `sip:${target}@${this._host}`;
    const session = this.ua.call(uri, {
      mediaConstraints: MEDIA_CONSTRAINTS,
      pcConfig: PC_CONFIG,
      rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
    });
    return { target: uri, callId: session && session._request ? session._request.call_id : null };
  },

  answer() {
    const session = this._requireSession();
    if (session.direction !== 'incoming') throw new Error('answer(): the session is not incoming');
    this._answer(session);
    return true;
  },

  hangup() {
    if (!this.session || this.session.isEnded()) return false;
    this.session.terminate();
    return true;
  },

  // hold()/unhold(): 'hold'/'unhold' are recorded at once (JsSIP), then 'holdDone'/'unholdDone'
  // when the re-INVITE succeeded. Returns false when JsSIP refused (state, already on hold).
  hold() {
    return this._requireSession().hold({}, () => this.record('holdDone'));
  },

  unhold() {
    return this._requireSession().unhold({}, () => this.record('unholdDone'));
  },

  // RFC 4733 telephone-events in the RTP stream; each tone played is recorded as 'dtmfSent'.
  sendDtmf(digits, { duration = 100, interToneGap = 70 } = {}) {
    const session = this._requireSession();
    const pc = session.connection;
    const sender = pc ? pc.getSenders().find((s) => s.track && s.track.kind === 'audio' && s.dtmf) : null;
    if (!sender) throw new Error('sendDtmf(): no audio sender with DTMF');
    if (!sender.dtmf.canInsertDTMF) throw new Error('sendDtmf(): telephone-event not negotiated (canInsertDTMF false)');
    if (!this._watched.has(sender.dtmf)) {
      this._watched.add(sender.dtmf);
      sender.dtmf.addEventListener('tonechange', (e) => {
        if (e.tone) this.record('dtmfSent', { tone: e.tone, transport: 'RFC4733' });
      });
    }
    session.sendDTMF(String(digits), { transportType: JsSIP.C.DTMF_TRANSPORT.RFC2833, duration, interToneGap });
    return true;
  },

  unregister(timeoutMs = 3000) {
    const ua = this.ua;
    if (!ua || !ua.isRegistered()) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      const done = (ok) => () => { clearTimeout(timer); resolve(ok); };
      ua.once('unregistered', done(true));
      ua.once('registrationFailed', done(false));
      ua.unregister({ all: false });
    });
  },

  stop() {
    this.stopLoopback();
    if (this.session && !this.session.isEnded()) {
      try { this.session.terminate(); } catch (err) { /* already terminating */ }
    }
    if (this.ua) {
      this.ua.stop();
      this.record('stopped');
    }
    this.ua = null;
  },

  // The call's audio stats; with no session, those of the loopback (startLoopback) if running.
  async stats() {
    const pc = this.session && this.session.connection ? this.session.connection : null;
    const source = pc ? 'session' : this._loopback ? 'loopback' : null;
    const out = await collectStats(pc || (this._loopback ? this._loopback.a : null));
    return { source, ...out };
  },

  // A self-test without SIP or network: two RTCPeerConnections in this page exchange audio from
  // the fake microphone both ways over host candidates. stats() then reports side A.
  async startLoopback() {
    this.stopLoopback();
    const a = new RTCPeerConnection(PC_CONFIG);
    const b = new RTCPeerConnection(PC_CONFIG);
    this._loopback = { a, b, streams: [] };
    a.addEventListener('icecandidate', (e) => { if (e.candidate) b.addIceCandidate(e.candidate).catch(() => {}); });
    b.addEventListener('icecandidate', (e) => { if (e.candidate) a.addIceCandidate(e.candidate).catch(() => {}); });
    this._watch(a);
    for (const pc of [a, b]) {
      const stream = await navigator.mediaDevices.getUserMedia(MEDIA_CONSTRAINTS);
      this._loopback.streams.push(stream);
      stream.getTracks().forEach((track) => pc.addTrack(track, stream));
    }
    const offer = await a.createOffer();
    await a.setLocalDescription(offer);
    await b.setRemoteDescription(offer);
    const answer = await b.createAnswer();
    await b.setLocalDescription(answer);
    await a.setRemoteDescription(answer);
    this.record('loopbackStarted');
    return { offerHasOpus: /opus\/48000/i.test(offer.sdp), offerHasTelephoneEvent: /telephone-event/i.test(offer.sdp) };
  },

  stopLoopback() {
    if (!this._loopback) return false;
    this._loopback.a.close();
    this._loopback.b.close();
    this._loopback.streams.forEach((s) => s.getTracks().forEach((t) => t.stop()));
    this._loopback = null;
    this.record('loopbackStopped');
    return true;
  },

  collectStats,

  state() {
    const s = this.session;
    return {
      started: Boolean(this.ua),
      connected: Boolean(this.ua && this.ua.isConnected()),
      registered: Boolean(this.ua && this.ua.isRegistered()),
      sessionStatus: s ? STATUS_NAMES[s.status] || String(s.status) : null,
      direction: s ? s.direction : null,
      established: Boolean(s && s.isEstablished()),
      ended: s ? s.isEnded() : null,
      onHold: s ? s.isOnHold() : null,
      muted: s ? s.isMuted() : null,
      events: this.events.length,
    };
  },
};

window.JsSIP = JsSIP;
window.phone = phone;
