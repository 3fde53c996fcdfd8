/*
 * The two trained LeNet-5s and MNIST's normalization in plain JavaScript, for the page
 * "Draw a digit" (chapters/10_draw.md). The same file runs in the browser (a classic script:
 * it defines the global `LeNet`) and in Node (tests/web_parity.js requires it), so the test
 * suite checks the very code the page runs against PyTorch and lenet_lib.
 *
 * Each function mirrors one in lenet_lib, named in its comment; the numbers are float64 here
 * and float32 in PyTorch, which the parity tests allow for.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.LeNet = api;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  /* Numbers as Python rounds them: half to even (Python's round, torch.round). */
  function roundHalfEven(x) {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  /* A base64 string of little-endian float32 values (lenet_lib.book.web.export_json). */
  function decodeFloats(b64) {
    let bytes;
    if (typeof atob === "function") {
      const s = atob(b64);
      bytes = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    } else {
      bytes = Uint8Array.from(Buffer.from(b64, "base64"));
    }
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  }

  /* One network of the exported JSON, its tensors decoded. */
  function loadNetwork(spec) {
    const net = Object.assign({}, spec, { tensors: {} });
    for (const [name, t] of Object.entries(spec.tensors)) {
      net.tensors[name] = { shape: t.shape, data: decodeFloats(t.data) };
    }
    return net;
  }

  // ---- the input: lenet_lib.nets.data.prepare ----

  /* A 28x28 uint8 digit scaled as the network was trained and padded to 32x32 with the
   * background (data.prepare). Both scalings are linear in the grey level v, so `input`, as
   * lenet_lib.book.web exports it from data.prepare, gives them: background + v/255 (ink - background). */
  function prepare(digit, input) {
    const { background, ink } = input;
    const out = new Float64Array(32 * 32).fill(background);
    for (let r = 0; r < 28; r++) {
      for (let c = 0; c < 28; c++) {
        out[(r + 2) * 32 + c + 2] = background + (digit[r * 28 + c] / 255) * (ink - background);
      }
    }
    return out;
  }

  // ---- the layers: lenet_lib.nets.models ----

  const ACTIVATIONS = {
    relu: (a) => (a > 0 ? a : 0),
    scaled_tanh: (a) => 1.7159 * Math.tanh((2 * a) / 3), // models.scaled_tanh
  };

  /* A valid 5x5 convolution of maps (C, H, W); `table[o][i]` false skips a kernel (the
   * paper's C3, models.SparseConv2d, whose exported weight is zero there). */
  function conv(x, C, H, W, weight, bias, table) {
    const [O, , K] = weight.shape;
    const Ho = H - K + 1, Wo = W - K + 1;
    const w = weight.data, out = new Float64Array(O * Ho * Wo);
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < Ho * Wo; i++) out[o * Ho * Wo + i] = bias.data[o];
      for (let c = 0; c < C; c++) {
        if (table && !table[o][c]) continue;
        for (let ky = 0; ky < K; ky++) {
          for (let kx = 0; kx < K; kx++) {
            const k = w[((o * C + c) * K + ky) * K + kx];
            for (let y = 0; y < Ho; y++) {
              const src = c * H * W + (y + ky) * W + kx, dst = o * Ho * Wo + y * Wo;
              for (let xx = 0; xx < Wo; xx++) out[dst + xx] += k * x[src + xx];
            }
          }
        }
      }
    }
    return out;
  }

  /* 2x2 blocks of maps (C, H, W): their maximum (nn.MaxPool2d), or their sum times a
   * coefficient plus a bias (the paper's models.Subsampling). */
  function pool(x, C, H, W, kind, sub) {
    const Ho = H / 2, Wo = W / 2, out = new Float64Array(C * Ho * Wo);
    for (let c = 0; c < C; c++) {
      for (let y = 0; y < Ho; y++) {
        for (let xx = 0; xx < Wo; xx++) {
          const i = c * H * W + 2 * y * W + 2 * xx;
          const v = [x[i], x[i + 1], x[i + W], x[i + W + 1]];
          out[c * Ho * Wo + y * Wo + xx] =
            kind === "max"
              ? Math.max(...v)
              : (v[0] + v[1] + v[2] + v[3]) * sub.weight.data[c] + sub.bias.data[c];
        }
      }
    }
    return out;
  }

  function linear(x, weight, bias) {
    const [O, I] = weight.shape, out = new Float64Array(O);
    for (let o = 0; o < O; o++) {
      let s = bias.data[o];
      for (let i = 0; i < I; i++) s += weight.data[o * I + i] * x[i];
      out[o] = s;
    }
    return out;
  }

  /* Euclidean RBF units: sum_j (x_j - centre_ij)^2 (models.RBF). */
  function rbf(x, centres) {
    const [O, I] = centres.shape, out = new Float64Array(O);
    for (let o = 0; o < O; o++) {
      let s = 0;
      for (let i = 0; i < I; i++) s += (x[i] - centres.data[o * I + i]) ** 2;
      out[o] = s;
    }
    return out;
  }

  /* Every layer's output for one 32x32 input, as models.LeNet5.features. */
  function features(net, input) {
    const t = net.tensors, act = ACTIVATIONS[net.activation];
    const apply = (a) => a.map(act);
    const n1 = t["c1.weight"].shape[0], n3 = t["c3.weight"].shape[0];
    const out = { input };
    const c1 = (out.c1 = apply(conv(input, 1, 32, 32, t["c1.weight"], t["c1.bias"])));
    let s2 = pool(c1, n1, 28, 28, net.pool, { weight: t["s2.weight"], bias: t["s2.bias"] });
    s2 = out.s2 = net.pool === "trainable" ? apply(s2) : s2;
    const c3 = (out.c3 = apply(conv(s2, n1, 14, 14, t["c3.weight"], t["c3.bias"], net.c3_table)));
    let s4 = pool(c3, n3, 10, 10, net.pool, { weight: t["s4.weight"], bias: t["s4.bias"] });
    s4 = out.s4 = net.pool === "trainable" ? apply(s4) : s4;
    const c5 = (out.c5 = apply(conv(s4, n3, 5, 5, t["c5.weight"], t["c5.bias"])));
    const f6 = (out.f6 = apply(linear(c5, t["f6.weight"], t["f6.bias"])));
    out.output =
      net.head === "rbf"
        ? rbf(f6, t["output.centres"])
        : linear(f6, t["output.weight"], t["output.bias"]);
    return out;
  }

  /* The answer and the probabilities: the largest output for the notes' network, the
   * smallest penalty for the paper's, softmax(out) or softmax(-penalty)
   * (handwriting.probabilities). */
  function decide(net, output) {
    const sign = net.head === "rbf" ? -1 : 1;
    const z = Array.from(output, (v) => sign * v);
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const total = e.reduce((a, b) => a + b, 0);
    return { digit: z.indexOf(m), probabilities: e.map((v) => v / total) };
  }

  // ---- the normalization: lenet_lib.book.handwriting.ink_bright and lenet_lib.nets.digits.normalize ----

  const MIN_CONTRAST = 0.25; // handwriting.MIN_CONTRAST
  const NOISE_FLOOR = 0.1; // handwriting.NOISE_FLOOR
  const MNIST_CENTRE = 14.0; // digits.MNIST_CENTRE

  /* RGBA pixels as PIL's convert("L") makes grey levels (handwriting.read_grey). */
  function greyFromRGBA(rgba, h, w) {
    const g = new Float64Array(h * w);
    for (let i = 0; i < h * w; i++) {
      const [r, gr, b] = [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]];
      g[i] = (r * 19595 + gr * 38470 + b * 7471 + 0x8000) >> 16;
    }
    return g;
  }

  function median(values) {
    const s = Float64Array.from(values).sort();
    const n = s.length;
    return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  }

  /* Grey levels (h x w) of either polarity as ink bright on black, 0..255
   * (handwriting.ink_bright). Throws if nothing stands out from the background. */
  function inkBright(grey, h, w) {
    const border = [];
    for (let c = 0; c < w; c++) border.push(grey[c]);
    for (let c = 0; c < w; c++) border.push(grey[(h - 1) * w + c]);
    for (let r = 0; r < h; r++) border.push(grey[r * w]);
    for (let r = 0; r < h; r++) border.push(grey[r * w + w - 1]);
    const background = median(border);
    let lo = Infinity, hi = -Infinity;
    for (const v of grey) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const inverted = background > (lo + hi) / 2;
    const ink = new Float64Array(h * w);
    let top = 0;
    for (let i = 0; i < h * w; i++) {
      ink[i] = Math.max(inverted ? background - grey[i] : grey[i] - background, 0);
      if (ink[i] > top) top = ink[i];
    }
    if (top < MIN_CONTRAST * 255) {
      throw new Error(`no ink found: no pixel differs from the background by more than ${Math.round(top)} of 255 grey levels`);
    }
    for (let i = 0; i < h * w; i++) ink[i] = ink[i] < NOISE_FLOOR * top ? 0 : ink[i] * (255 / top);
    return { ink, inverted };
  }

  /* Weights of the anti-aliased bilinear resampling of one axis, as PyTorch computes them for
   * F.interpolate(mode="bilinear", antialias=True, align_corners=False): a triangle filter
   * widened by the scale when shrinking, normalized over the input pixels it covers. */
  function resampleWeights(inSize, outSize) {
    const scale = inSize / outSize;
    const support = scale >= 1 ? scale : 1;
    const invscale = scale >= 1 ? 1 / scale : 1;
    const rows = [];
    for (let i = 0; i < outSize; i++) {
      const centre = scale * (i + 0.5);
      const xmin = Math.max(Math.trunc(centre - support + 0.5), 0);
      const xmax = Math.min(Math.trunc(centre + support + 0.5), inSize);
      const w = [];
      let total = 0;
      for (let j = xmin; j < xmax; j++) {
        const v = Math.max(0, 1 - Math.abs((j - centre + 0.5) * invscale));
        w.push(v);
        total += v;
      }
      rows.push({ xmin, w: total ? w.map((v) => v / total) : w });
    }
    return rows;
  }

  function resample(a, h, w, oh, ow) {
    const rw = resampleWeights(w, ow), rh = resampleWeights(h, oh);
    const tmp = new Float64Array(h * ow);
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < ow; c++) {
        let s = 0;
        const { xmin, w: k } = rw[c];
        for (let j = 0; j < k.length; j++) s += k[j] * a[r * w + xmin + j];
        tmp[r * ow + c] = s;
      }
    }
    const out = new Float64Array(oh * ow);
    for (let r = 0; r < oh; r++) {
      const { xmin, w: k } = rh[r];
      for (let c = 0; c < ow; c++) {
        let s = 0;
        for (let j = 0; j < k.length; j++) s += k[j] * tmp[(xmin + j) * ow + c];
        out[r * ow + c] = s;
      }
    }
    return out;
  }

  /* One digit (h x w, ink bright on dark, 0..255) as an MNIST digit: crop to the ink, scale
   * the longer side to `box` keeping the aspect ratio, centre of mass at MNIST's
   * (digits.normalize). Returns { digit: Uint8Array(field*field), box: [top, left, h, w] }. */
  function normalize(image, h, w, box = 20, field = 28) {
    let max = -Infinity;
    for (const v of image) if (v > max) max = v;
    const isInk = max > 0 ? (v) => v > 0.1 * max : (v) => v > 0;
    let r0 = h, r1 = -1, c0 = w, c1 = -1;
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        if (isInk(image[r * w + c])) {
          r0 = Math.min(r0, r), r1 = Math.max(r1, r), c0 = Math.min(c0, c), c1 = Math.max(c1, c);
        }
      }
    }
    if (r1 < 0) throw new Error("the image is empty: no ink found");
    const ch = r1 - r0 + 1, cw = c1 - c0 + 1;
    const crop = new Float64Array(ch * cw);
    for (let r = 0; r < ch; r++) {
      for (let c = 0; c < cw; c++) crop[r * cw + c] = image[(r + r0) * w + c + c0];
    }
    const scale = box / Math.max(ch, cw);
    const oh = Math.max(1, roundHalfEven(ch * scale)), ow = Math.max(1, roundHalfEven(cw * scale));
    const a = resample(crop, ch, cw, oh, ow);
    let top = 0;
    for (let i = 0; i < a.length; i++) {
      a[i] = Math.max(a[i], 0);
      top = Math.max(top, a[i]);
    }
    let mass = 0, mr = 0, mc = 0;
    for (let r = 0; r < oh; r++) {
      for (let c = 0; c < ow; c++) {
        const v = (a[r * ow + c] = (a[r * ow + c] / top) * 255);
        mass += v, mr += v * r, mc += v * c;
      }
    }
    const place = (com, n) =>
      Math.min(Math.max(roundHalfEven((MNIST_CENTRE * field) / 28 - com), 0), field - n);
    const y0 = place(mr / mass, oh), x0 = place(mc / mass, ow);
    const digit = new Uint8Array(field * field);
    for (let r = 0; r < oh; r++) {
      for (let c = 0; c < ow; c++) {
        digit[(r + y0) * field + c + x0] = Math.min(255, Math.max(0, roundHalfEven(a[r * ow + c])));
      }
    }
    return { digit, box: [y0, x0, oh, ow] };
  }

  /* The whole path of `lenet predict` for grey levels: ink_bright, then normalize. */
  function digitFromGrey(grey, h, w) {
    return normalize(inkBright(grey, h, w).ink, h, w).digit;
  }

  return {
    roundHalfEven,
    decodeFloats,
    loadNetwork,
    prepare,
    features,
    decide,
    greyFromRGBA,
    inkBright,
    normalize,
    digitFromGrey,
  };
});
