// An independent implementation of Coolify v3's at-rest format on Node's own crypto
// (aes-256-ctr, key = the 32-character secret's bytes, {"iv":"<hex>","content":"<hex>"}),
// used by the tests to cross-check installer/crypto/*.py in both directions.
//
// stdin: one JSON object per line; stdout: one JSON object per line, {"result": ...}
// (null stands for JavaScript's undefined). Operations:
//   {"op":"encrypt","key":K,"plaintext":P}  P trimmed as v3 trims, encrypted (even if empty)
//   {"op":"decrypt","key":K,"value":V}      strict: throws on anything that is not ciphertext
//   {"op":"v3decrypt","key":K,"value":V}    v3's own decrypt: lossy UTF-8, and on any error
//                                          the stored text itself
//   {"op":"v3roll","old":O,"new":N,"value":V}  what v3's start-up roll wrote for V:
//                                          encrypt(decrypt(V, O), N), or null when it left V
//   {"op":"plain","key":K,"value":V}        the UTF-8 text of V under K (lossy), for checks
'use strict';
const crypto = require('crypto');
const readline = require('readline');

function encrypt(text, secret) {
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv('aes-256-ctr', Buffer.from(secret, 'utf8'), iv);
  const content = Buffer.concat([cipher.update(text.trim(), 'utf8'), cipher.final()]);
  return JSON.stringify({ iv: iv.toString('hex'), content: content.toString('hex') });
}

// The app's encrypt: nothing for an empty text (Prisma then leaves the column as it was).
function encryptLikeV3(text, secret) {
  if (!text || !secret) return undefined;
  return encrypt(text, secret);
}

function decryptStrict(stored, secret) {
  const doc = JSON.parse(stored);
  const decipher = crypto.createDecipheriv('aes-256-ctr', Buffer.from(secret, 'utf8'), Buffer.from(doc.iv, 'hex'));
  return Buffer.concat([decipher.update(Buffer.from(doc.content, 'hex')), decipher.final()]).toString('utf8');
}

// The app's decrypt: nothing for an empty value; any failure gives back the stored text.
function decryptLikeV3(stored, secret) {
  if (!stored || !secret) return undefined;
  try {
    return decryptStrict(stored, secret);
  } catch (err) {
    return stored;
  }
}

function handle(req) {
  switch (req.op) {
    case 'encrypt':
      return encrypt(req.plaintext, req.key);
    case 'decrypt':
    case 'plain':
      return decryptStrict(req.value, req.key);
    case 'v3decrypt':
      return decryptLikeV3(req.value, req.key);
    case 'v3roll':
      return encryptLikeV3(decryptLikeV3(req.value, req.old), req.new);
    default:
      throw new Error('unknown op ' + req.op);
  }
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on('line', (line) => {
  if (!line.trim()) return;
  const result = handle(JSON.parse(line));
  process.stdout.write(JSON.stringify({ result: result === undefined ? null : result }) + '\n');
});
