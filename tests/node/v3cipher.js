// An independent implementation of Coolify v3's at-rest format on Node's own crypto
// (aes-256-ctr, key = the 32-character secret's bytes, {"iv":"<hex>","content":"<hex>"}),
// used by the tests to cross-check installer/crypto/codecs.py in both directions.
//
// stdin: one JSON object per line, {"op":"encrypt","key":K,"plaintext":P} or
// {"op":"decrypt","key":K,"value":V}; stdout: one JSON object per line, {"result": ...}.
'use strict';
const crypto = require('crypto');
const readline = require('readline');

function encrypt(text, secret) {
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv('aes-256-ctr', Buffer.from(secret, 'utf8'), iv);
  const content = Buffer.concat([cipher.update(text.trim(), 'utf8'), cipher.final()]);
  return JSON.stringify({ iv: iv.toString('hex'), content: content.toString('hex') });
}

function decrypt(stored, secret) {
  const doc = JSON.parse(stored);
  const decipher = crypto.createDecipheriv('aes-256-ctr', Buffer.from(secret, 'utf8'), Buffer.from(doc.iv, 'hex'));
  return Buffer.concat([decipher.update(Buffer.from(doc.content, 'hex')), decipher.final()]).toString('utf8');
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on('line', (line) => {
  if (!line.trim()) return;
  const req = JSON.parse(line);
  const result = req.op === 'encrypt' ? encrypt(req.plaintext, req.key) : decrypt(req.value, req.key);
  process.stdout.write(JSON.stringify({ result }) + '\n');
});
