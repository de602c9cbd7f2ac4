// The wire format the page speaks (docs/protocol.md, "Media messages"):
// parsing the 32-byte header of what the relay forwards, building the
// input messages the page sends, and the little bitstream reading needed to
// configure a WebCodecs decoder from an Annex-B keyframe.  Pure functions,
// no DOM, so they stay easy to reason about.

export const MAGIC = 0xa5;
export const VERSION = 1;
export const HDR_LEN = 32;
export const INPUT_LEN = 16;
export const KIND = { video: 1, audio: 2, cursor: 3, input: 4, control: 5 };
export const CODEC = { none: 0, h264: 1, hevc: 2, opus: 3, av1: 4 };
export const FLAG_KEYFRAME = 1;
export const INPUT = {
  keyDown: 1, keyUp: 2, pointerMove: 3, pointerDown: 4, pointerUp: 5, wheel: 6,
  touchStart: 7, touchMove: 8, touchEnd: 9,
};
export const CODEC_NAMES = ['none', 'h264', 'hevc', 'opus', 'av1'];

// The header and payload of a binary message, or null when it is not one
// the protocol allows (the relay validates, but the page must not trust
// that blindly: a short or inconsistent message would misdecode).
export function parseMedia(buf) {
  if (buf.byteLength < HDR_LEN) return null;
  const v = new DataView(buf);
  if (v.getUint8(0) !== MAGIC || v.getUint8(1) !== VERSION) return null;
  const length = v.getUint32(12);
  if (length !== buf.byteLength - HDR_LEN) return null;
  return {
    kind: v.getUint8(2),
    flags: v.getUint8(3),
    codec: v.getUint8(4),
    stream: v.getUint16(6),
    seq: v.getUint32(8),
    // Microseconds fit a double exactly for the next few centuries.
    pts: Number(v.getBigUint64(16)),
    capture: Number(v.getBigUint64(24)),
    payload: new Uint8Array(buf, HDR_LEN, length),
  };
}

// One input message: header (kind 4, codec 0, stream 0) and the 16-byte
// payload.  x, y, code are clamped into their wire types.
export function inputMessage(seq, { type, mods = 0, x = 0, y = 0, code = 0 }) {
  const buf = new ArrayBuffer(HDR_LEN + INPUT_LEN);
  const v = new DataView(buf);
  v.setUint8(0, MAGIC);
  v.setUint8(1, VERSION);
  v.setUint8(2, KIND.input);
  v.setUint32(8, seq >>> 0);
  v.setUint32(12, INPUT_LEN);
  v.setBigUint64(24, BigInt(Date.now()) * 1000n);
  v.setUint8(HDR_LEN, type);
  v.setUint16(HDR_LEN + 2, mods & 0xffff);
  v.setInt32(HDR_LEN + 4, x | 0);
  v.setInt32(HDR_LEN + 8, y | 0);
  v.setUint32(HDR_LEN + 12, code >>> 0);
  return buf;
}

// The NAL units of an Annex-B access unit, as subarrays without their start
// codes.  Start codes are 00 00 01 or 00 00 00 01.
export function nalUnits(au) {
  const starts = [];
  for (let i = 0; i + 2 < au.length; i++) {
    if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1) {
      starts.push(i + 3);
      i += 2;
    }
  }
  return starts.map((s, k) => {
    let end = k + 1 < starts.length ? starts[k + 1] - 3 : au.length;
    // A four-byte start code leaves a zero that belongs to it, not to us.
    while (end > s && au[end - 1] === 0 && k + 1 < starts.length) end--;
    return au.subarray(s, end);
  });
}

// The RBSP of a NAL unit's first bytes: emulation-prevention bytes
// (00 00 03) removed.  Only the head of a parameter set is ever read.
function rbsp(nal, from, max) {
  const out = [];
  let zeros = 0;
  for (let i = from; i < nal.length && out.length < max; i++) {
    if (zeros >= 2 && nal[i] === 3) { zeros = 0; continue; }
    zeros = nal[i] === 0 ? zeros + 1 : 0;
    out.push(nal[i]);
  }
  return out;
}

const hex2 = (n) => n.toString(16).padStart(2, '0');

// The parameter sets of a keyframe and the WebCodecs codec string they
// imply, or null when the access unit carries none.  `key` identifies the
// parameter sets: when it changes the decoder must be configured again.
export function parameterSets(codec, au) {
  const nals = nalUnits(au);
  if (codec === CODEC.h264) {
    const type = (n) => n[0] & 0x1f;
    const sps = nals.find((n) => n.length >= 4 && type(n) === 7);
    if (!sps) return null;
    const [profile, constraints, level] = rbsp(sps, 1, 3);
    return {
      codecString: `avc1.${hex2(profile)}${hex2(constraints)}${hex2(level)}`,
      key: setsKey(nals, type, [7, 8]),
    };
  }
  if (codec === CODEC.hevc) {
    const type = (n) => (n[0] >> 1) & 0x3f;
    const sps = nals.find((n) => n.length >= 15 && type(n) === 33);
    if (!sps) return null;
    return { codecString: hevcCodecString(rbsp(sps, 2, 13)), key: setsKey(nals, type, [32, 33, 34]) };
  }
  return null;
}

// The parameter-set NAL units of types `types`, as one hex string.
function setsKey(nals, type, types) {
  let s = '';
  for (const n of nals) {
    if (!types.includes(type(n))) continue;
    for (const b of n) s += hex2(b);
    s += '|';
  }
  return s;
}

// hev1.<space><profile>.<compat flags, bit-reversed>.<tier><level>.<constraint
// bytes> (ISO/IEC 14496-15 annex E) from the SPS head: one byte of ids, then
// profile_tier_level.
function hevcCodecString(h) {
  const ptl = h.slice(1);
  const space = ['', 'A', 'B', 'C'][ptl[0] >> 6];
  const tier = (ptl[0] >> 5) & 1 ? 'H' : 'L';
  const profile = ptl[0] & 0x1f;
  let compat = 0;
  for (let i = 0; i < 4; i++) compat = (compat << 8) | ptl[1 + i];
  let reversed = 0;
  for (let i = 0; i < 32; i++) reversed = (reversed * 2) + ((compat >>> i) & 1);
  const constraints = ptl.slice(5, 11);
  while (constraints.length > 1 && constraints[constraints.length - 1] === 0) constraints.pop();
  const level = ptl[11];
  return `hev1.${space}${profile}.${reversed.toString(16)}.${tier}${level}.${constraints.map((b) => b.toString(16)).join('.')}`;
}
