// Runs the page's web/lenet.js in Node for tests/test_web.py: reads a JSON request from the
// file named by argv[2] and prints a JSON answer on stdout.
//
// Request: { weights: path of weights.json (read if there are digits), lib: path of lenet.js,
//            digits: [base64 of 784 uint8, ...], scans: [{ h, w, data: base64 of h*w uint8 }] }
// Answer:  { notes: [[10 outputs], ...], paper: [[10 penalties], ...],
//            normalized: [[784 grey levels], ...] }
"use strict";
const fs = require("fs");

const request = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const LeNet = require(request.lib);
const bytes = (b64) => Uint8Array.from(Buffer.from(b64, "base64"));

const answer = { normalized: [] };
const spec = request.digits.length ? JSON.parse(fs.readFileSync(request.weights, "utf8")) : {};
for (const name of Object.keys(spec)) {
  const net = LeNet.loadNetwork(spec[name]);
  answer[name] = request.digits.map((d) =>
    Array.from(LeNet.features(net, LeNet.prepare(bytes(d), net.input)).output),
  );
}
for (const s of request.scans) {
  const grey = Float64Array.from(bytes(s.data));
  answer.normalized.push(Array.from(LeNet.digitFromGrey(grey, s.h, s.w)));
}
process.stdout.write(JSON.stringify(answer));
