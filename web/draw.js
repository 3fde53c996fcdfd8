/*
 * The page "Draw a digit" (chapters/10_draw.md): a canvas the reader draws on, and both
 * trained networks reading the drawing as it grows. The networks and the normalization are
 * in lenet.js (the global LeNet); this file is the page: drawing, undo, and the displays.
 *
 * Timings go to window.LeNetDraw.timings (milliseconds from performance.now()): `ready`,
 * when the networks could first read a digit; `weights`, fetching and decoding weights.json;
 * `strokes`, for each finished stroke, from the pointer's release to the results on screen.
 * Errors go to the console (console.error) and to the status line.
 */
(function () {
  "use strict";
  const root = document.getElementById("lenet-draw");
  if (!root) return;
  const $ = (sel) => root.querySelector(sel);
  const status = $(".ld-status");
  const timings = { weights: null, ready: null, strokes: [] };
  const state = { strokes: [], current: null, nets: null, pending: false };
  window.LeNetDraw = { timings, state, answers: {} };

  function fail(message, err) {
    console.error(`Draw a digit: ${message}`, err || "");
    status.textContent = message;
    root.classList.add("ld-error");
  }

  // ---- the drawing ----

  const pad = $("canvas.ld-pad");
  const ctx = pad.getContext("2d", { willReadFrequently: true });
  const SIZE = pad.width;
  const PEN = SIZE / 14; // a stroke a fourteenth of the pad wide, as MNIST's pen is of its box

  function paint() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, SIZE, SIZE);
    ctx.strokeStyle = "#000";
    ctx.fillStyle = "#000";
    ctx.lineWidth = PEN;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    for (const s of state.strokes.concat(state.current ? [state.current] : [])) {
      if (s.length === 1) {
        ctx.beginPath();
        ctx.arc(s[0][0], s[0][1], PEN / 2, 0, 2 * Math.PI);
        ctx.fill();
        continue;
      }
      ctx.beginPath();
      ctx.moveTo(s[0][0], s[0][1]);
      for (const [x, y] of s.slice(1)) ctx.lineTo(x, y);
      ctx.stroke();
    }
  }

  function point(ev) {
    const r = pad.getBoundingClientRect();
    return [((ev.clientX - r.left) * SIZE) / r.width, ((ev.clientY - r.top) * SIZE) / r.height];
  }

  pad.addEventListener("pointerdown", (ev) => {
    if (!state.nets) return;
    ev.preventDefault();
    pad.setPointerCapture(ev.pointerId);
    state.current = [point(ev)];
    paint();
    schedule();
  });
  pad.addEventListener("pointermove", (ev) => {
    if (!state.current) return;
    ev.preventDefault();
    state.current.push(point(ev));
    paint();
    schedule();
  });
  function endStroke(ev) {
    if (!state.current) return;
    const t0 = performance.now();
    state.strokes.push(state.current);
    state.current = null;
    paint();
    read();
    timings.strokes.push(performance.now() - t0);
    showTiming();
    if (ev) pad.releasePointerCapture(ev.pointerId);
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);

  $(".ld-undo").addEventListener("click", () => {
    state.strokes.pop();
    paint();
    read();
  });
  $(".ld-clear").addEventListener("click", () => {
    state.strokes = [];
    paint();
    read();
  });

  // While a stroke is drawn, read at most once a frame.
  function schedule() {
    if (state.pending) return;
    state.pending = true;
    requestAnimationFrame(() => {
      state.pending = false;
      read();
    });
  }

  // ---- reading the drawing ----

  function read() {
    if (!state.nets) return;
    if (!state.strokes.length && !state.current) {
      blank();
      return;
    }
    const img = ctx.getImageData(0, 0, SIZE, SIZE);
    let digit;
    try {
      digit = LeNet.digitFromGrey(LeNet.greyFromRGBA(img.data, SIZE, SIZE), SIZE, SIZE);
    } catch (err) {
      blank(err.message);
      return;
    }
    root.classList.add("ld-has-digit");
    let first = true;
    for (const [name, net] of Object.entries(state.nets)) {
      const input = LeNet.prepare(digit, net.input);
      const f = LeNet.features(net, input);
      const { digit: answer, probabilities } = LeNet.decide(net, f.output);
      window.LeNetDraw.answers[name] = answer;
      if (first) showInput(digit), (first = false);
      showNet(name, net, f, answer, probabilities);
    }
  }

  function blank(message) {
    root.classList.remove("ld-has-digit");
    window.LeNetDraw.answers = {};
    status.textContent = message || "Draw a digit in the box, one stroke at a time.";
    for (const name of Object.keys(state.nets)) {
      const panel = $(`.ld-net[data-net="${name}"]`);
      panel.querySelector(".ld-answer").textContent = "?";
      panel.querySelector(".ld-verdict").textContent = "";
      for (const bar of panel.querySelectorAll(".ld-bar")) bar.style.width = "0";
      for (const v of panel.querySelectorAll(".ld-value")) v.textContent = "";
      for (const row of panel.querySelectorAll(".ld-row")) row.classList.remove("ld-best");
    }
    for (const c of root.querySelectorAll("canvas.ld-map, canvas.ld-input")) {
      c.getContext("2d").clearRect(0, 0, c.width, c.height);
    }
  }

  // ---- the displays ----

  /* A grey picture of a 28x28 digit padded to 32x32, ink dark on white as it was drawn. */
  function showInput(digit) {
    const c = $("canvas.ld-input"), g = c.getContext("2d");
    const img = g.createImageData(32, 32);
    for (let r = 0; r < 32; r++) {
      for (let col = 0; col < 32; col++) {
        const inside = r >= 2 && r < 30 && col >= 2 && col < 30;
        const v = 255 - (inside ? digit[(r - 2) * 28 + col - 2] : 0);
        img.data.set([v, v, v, 255], 4 * (r * 32 + col));
      }
    }
    g.putImageData(img, 0, 0);
  }

  // Blue for negative, white for zero, red for positive (chapter 04's RdBu_r).
  const NEG = [33, 102, 172], MID = [247, 247, 247], POS = [178, 24, 43];
  function colour(t) {
    const [a, b, u] = t < 0 ? [MID, NEG, -t] : [MID, POS, t];
    return a.map((v, i) => Math.round(v + (b[i] - v) * u));
  }

  /* The maps (n, size, size) of one layer, one colour scale for the layer. */
  function showMaps(box, maps, n, size) {
    let top = 0;
    for (const v of maps) top = Math.max(top, Math.abs(v));
    const canvases = box.querySelectorAll("canvas");
    for (let m = 0; m < n; m++) {
      const g = canvases[m].getContext("2d"), img = g.createImageData(size, size);
      for (let i = 0; i < size * size; i++) {
        img.data.set(colour(top ? maps[m * size * size + i] / top : 0).concat(255), 4 * i);
      }
      g.putImageData(img, 0, 0);
    }
  }

  function showNet(name, net, f, answer, probabilities) {
    const panel = $(`.ld-net[data-net="${name}"]`);
    panel.querySelector(".ld-answer").textContent = String(answer);
    const rbf = net.head === "rbf";
    const scores = rbf ? Array.from(f.output) : probabilities;
    const top = Math.max(...scores);
    panel.querySelector(".ld-verdict").textContent = rbf
      ? `penalty ${scores[answer].toFixed(1)}, next lowest ${nextBest(scores, answer, -1).toFixed(1)}`
      : `probability ${(100 * scores[answer]).toFixed(1)}%`;
    panel.querySelectorAll(".ld-row").forEach((row, d) => {
      row.classList.toggle("ld-best", d === answer);
      row.querySelector(".ld-bar").style.width = `${(100 * scores[d]) / (top || 1)}%`;
      row.querySelector(".ld-value").textContent = rbf
        ? scores[d].toFixed(1)
        : `${(100 * scores[d]).toFixed(1)}%`;
    });
    showMaps(panel.querySelector(".ld-c1"), f.c1, f.c1.length / 784, 28);
    showMaps(panel.querySelector(".ld-c3"), f.c3, f.c3.length / 100, 10);
    status.textContent = "Both networks read the drawing as it is now; Undo takes back a stroke.";
  }

  function nextBest(scores, answer, sign) {
    const others = scores.filter((_, d) => d !== answer);
    return sign < 0 ? Math.min(...others) : Math.max(...others);
  }

  function showTiming() {
    const s = timings.strokes, last = s[s.length - 1];
    $(".ld-timing").textContent =
      `Networks ready ${timings.ready.toFixed(0)} ms after the page started loading ` +
      `(weights ${timings.weights.toFixed(0)} ms); the last stroke was read in ` +
      `${last.toFixed(1)} ms.`;
  }

  /* The panels' fixed parts: ten bar rows and the map canvases, from the networks' shapes. */
  function build(name, net) {
    const panel = $(`.ld-net[data-net="${name}"]`);
    panel.querySelector(".ld-run").textContent =
      `Run ${net.run_id} (${net.optimizer}, ${net.epochs} epochs): ` +
      `${net.test_acc.toFixed(2)}% of MNIST's test digits right`;
    panel.querySelector(".ld-scale").textContent =
      net.head === "rbf"
        ? "RBF penalty of each digit: the lowest wins"
        : "probability of each digit (softmax of the ten outputs)";
    const bars = panel.querySelector(".ld-bars");
    for (let d = 0; d < 10; d++) {
      const row = document.createElement("div");
      row.className = "ld-row";
      row.innerHTML =
        `<span class="ld-digit">${d}</span><span class="ld-track"><span class="ld-bar"></span>` +
        `</span><span class="ld-value"></span>`;
      bars.appendChild(row);
    }
    for (const [cls, n, size] of [
      [".ld-c1", net.tensors["c1.weight"].shape[0], 28],
      [".ld-c3", net.tensors["c3.weight"].shape[0], 10],
    ]) {
      const box = panel.querySelector(cls);
      for (let m = 0; m < n; m++) {
        const c = document.createElement("canvas");
        c.className = "ld-map";
        c.width = c.height = size;
        c.title = `${cls.slice(4).toUpperCase()} map ${m + 1}`;
        box.appendChild(c);
      }
    }
  }

  // ---- start: fetch and decode the weights ----

  paint();
  const t0 = performance.now();
  fetch(root.dataset.weights)
    .then((r) => {
      if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
      return r.json();
    })
    .then((spec) => {
      state.nets = {};
      for (const name of ["notes", "paper"]) {
        state.nets[name] = LeNet.loadNetwork(spec[name]);
        build(name, state.nets[name]);
      }
      timings.weights = performance.now() - t0;
      timings.ready = performance.now();
      root.classList.add("ld-ready");
      blank();
    })
    .catch((err) =>
      fail(
        `could not load the networks' weights (${root.dataset.weights}: ${err.message}). ` +
          "Open the book through a web server, e.g. python -m http.server -d _build/html.",
        err,
      ),
    );
})();
