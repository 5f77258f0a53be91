// refaug gallery (src/gallery/site/gallery.js): draws the refs of data.js (window.REFAUG_GALLERY)
// as cards, one panel per variant, with the boxes as an SVG overlay in the original image's pixel
// coordinates (viewBox = the image size, so a box is drawn with the numbers the shards hold).
// Filters, orders, toggles and the score threshold only show, hide and move what is drawn once.
// The state lives in the URL's fragment (#sort=random&seed=3&score=0.5…), so a view can be shared.
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  var DATA = window.REFAUG_GALLERY;
  var FORMAT = 1;

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs, text) {
    var node = tag.indexOf("svg:") === 0
      ? document.createElementNS(SVG_NS, tag.slice(4))
      : document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  if (!DATA || DATA.format !== FORMAT) {
    $("cards").appendChild(el("p", { "class": "error" },
      "data.js is missing or has another format than this page reads (" + FORMAT + ")."));
    return;
  }

  // ---- the random order: the same key as `refaug gallery --sort random` (src/gallery/select.rs)
  function fmix32(h) {
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
  }

  function shuffleKey(seed, refId) {
    var lo = (refId % 4294967296) >>> 0;
    var hi = Math.floor(refId / 4294967296) >>> 0;
    return fmix32(fmix32((seed ^ 0x9e3779b9) >>> 0) ^ fmix32(lo) ^ Math.imul(hi, 0x85ebca6b));
  }

  // ---- state (defaults, then the URL fragment)
  var variantNames = DATA.variants.map(function (v) { return v.name; });
  var state = {
    split: "",
    category: "",
    iouMin: 0,
    iouMax: 1,
    usable: "",
    sort: DATA.selection.sort,
    sortVariant: "",
    seed: DATA.selection.seed,
    variants: variantNames.slice(),
    gt: true,
    best: true,
    all: false,
    labels: false,
    onlyKept: false,
    score: 0
  };

  function readHash() {
    var params = new URLSearchParams(window.location.hash.slice(1));
    function num(key, lo, hi) {
      if (!params.has(key)) return;
      var v = Number(params.get(key));
      if (isFinite(v)) state[key] = Math.min(hi, Math.max(lo, v));
    }
    function flag(key) {
      if (params.has(key)) state[key] = params.get(key) === "1";
    }
    ["split", "category", "usable", "sort", "sortVariant"].forEach(function (k) {
      if (params.has(k)) state[k] = params.get(k);
    });
    num("iouMin", 0, 1);
    num("iouMax", 0, 1);
    num("score", 0, 1);
    num("seed", 0, 4294967295);
    state.seed = Math.floor(state.seed);
    ["gt", "best", "all", "labels", "onlyKept"].forEach(flag);
    if (params.has("variants")) {
      state.variants = params.get("variants").split(",").filter(function (v) {
        return variantNames.indexOf(v) >= 0;
      });
    }
  }

  function writeHash() {
    var params = new URLSearchParams();
    Object.keys(state).forEach(function (k) {
      var v = state[k];
      if (Array.isArray(v)) v = v.join(",");
      else if (typeof v === "boolean") v = v ? "1" : "0";
      params.set(k, String(v));
    });
    try {
      window.history.replaceState(null, "", "#" + params.toString());
    } catch (e) {
      // Some browsers refuse history changes on file:// pages; the view still works.
    }
  }

  // ---- numbers
  function fmt(x, digits) {
    return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
  }

  function finiteBox(b) {
    return b.length >= 4 && [0, 1, 2, 3].every(function (i) {
      return typeof b[i] === "number" && isFinite(b[i]);
    });
  }

  // The stored float32 numbers, exactly: String() of a double parsed from float32's shortest
  // form gives that form back.
  function boxPath(b) {
    return "M " + b[0] + " " + b[1] + " H " + b[2] + " V " + b[3] + " H " + b[0] + " Z";
  }

  function proposalsOf(refData, variant) {
    var rv = refData.variants[variant];
    if (!rv) return null;
    return DATA.images[String(refData.image_id)].proposals[variant][rv.set];
  }

  // ---- drawing: one card per ref, one panel per variant
  var cards = [];

  function drawPanel(refData, variant, image) {
    var info = DATA.variants[variantNames.indexOf(variant)];
    var panel = el("figure", { "class": "panel", "data-variant": variant });
    var rv = refData.variants[variant];
    var caption = el("figcaption");
    caption.appendChild(el("span", { "class": "variant" }, variant));
    caption.appendChild(document.createTextNode(" (" + info.detector + ") "));
    if (!rv) {
      panel.appendChild(el("div", { "class": "norow" }, "no row for this ref in this variant"));
      panel.appendChild(caption);
      return panel;
    }
    var w = image.width, h = image.height;
    var frame = el("div", { "class": "frame" });
    frame.style.paddingTop = (100 * h / w) + "%";
    frame.appendChild(el("img", { src: image.thumbnail, alt: image.file_name, loading: "lazy", decoding: "async" }));
    var svg = el("svg:svg", {
      viewBox: "0 0 " + w + " " + h,
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": variant + " boxes of ref " + refData.ref_id
    });
    var fontSize = Math.max(w, h) / 32;
    var proposals = proposalsOf(refData, variant);
    var all = el("svg:g", { "class": "layer-all" });
    var undrawn = 0;
    function box(p, index, cls) {
      var g = el("svg:g", { "class": "box", "data-index": index, "data-score": p[4], "data-kept": p[7] ? "1" : "0" });
      if (!finiteBox(p)) {
        undrawn += 1;
        return null;
      }
      var path = el("svg:path", { "class": cls + (p[7] ? "" : " dropped"), d: boxPath(p) });
      path.appendChild(el("svg:title", {}, p[6] + " (class " + p[5] + ") score " + fmt(p[4], 3) +
        ", IoU " + fmt(rv.ious[index], 3) + (p[7] ? "" : ", dropped by the training filter")));
      g.appendChild(path);
      var label = el("svg:text", { "class": "box-label", x: p[0], y: p[1], dy: "1em", "font-size": fontSize },
        p[6] + " " + fmt(p[4], 2));
      g.appendChild(label);
      return g;
    }
    proposals.forEach(function (p, i) {
      var g = box(p, i, "proposal");
      if (g) all.appendChild(g);
    });
    svg.appendChild(all);
    var best = el("svg:g", { "class": "layer-best" });
    if (rv.best_index !== null && rv.best_index !== undefined) {
      var g = box(proposals[rv.best_index], rv.best_index, "best");
      if (g) best.appendChild(g);
    }
    svg.appendChild(best);
    var gtLayer = el("svg:g", { "class": "layer-gt" });
    if (finiteBox(refData.gt)) {
      var gtPath = el("svg:path", { "class": "gt", d: boxPath(refData.gt) });
      gtPath.appendChild(el("svg:title", {}, "ground truth: " + refData.category));
      gtLayer.appendChild(gtPath);
    }
    svg.appendChild(gtLayer);
    frame.appendChild(svg);
    panel.appendChild(frame);

    caption.appendChild(document.createTextNode("best IoU " + fmt(rv.best_iou, 3) + " · " +
      proposals.length + " proposals"));
    var shown = el("span", { "class": "shown" });
    caption.appendChild(shown);
    caption.appendChild(document.createTextNode(" · training filter: "));
    caption.appendChild(el("span", { "class": "verdict " + (rv.usable ? "kept" : "dropped") },
      rv.usable ? "kept" : "dropped"));
    if (undrawn > 0) caption.appendChild(document.createTextNode(" · " + undrawn + " box(es) not finite, not drawn"));
    panel.appendChild(caption);
    return panel;
  }

  function drawCard(refData) {
    var image = DATA.images[String(refData.image_id)];
    var card = el("article", { "class": "card", id: "ref-" + refData.ref_id, tabindex: "-1", "data-ref-id": refData.ref_id });
    var title = el("h2", {}, "ref " + refData.ref_id + " · " + refData.category + " ");
    title.appendChild(el("span", { "class": "meta" }, refData.split + " · image " + refData.image_id +
      " (" + image.file_name + ", " + image.width + "×" + image.height + ")"));
    card.appendChild(title);
    var sentences = el("ol", { "class": "sentences" });
    refData.sentences.forEach(function (s) {
      sentences.appendChild(el("li", {}, s));
    });
    card.appendChild(sentences);
    var panels = el("div", { "class": "panels" });
    variantNames.forEach(function (v) {
      panels.appendChild(drawPanel(refData, v, image));
    });
    card.appendChild(panels);
    return card;
  }

  // ---- which cards, in which order
  function variantsFor() {
    return state.sortVariant ? [state.sortVariant] : variantNames;
  }

  function outcomes(refData) {
    return variantsFor().map(function (v) { return refData.variants[v]; }).filter(Boolean);
  }

  function matches(refData) {
    if (state.split && refData.split !== state.split) return false;
    if (state.category && refData.category !== state.category) return false;
    var os = outcomes(refData);
    var inRange = os.some(function (o) {
      return o.best_iou >= state.iouMin && o.best_iou <= state.iouMax;
    });
    if (!inRange) return false;
    if (state.usable === "kept" && !os.some(function (o) { return o.usable; })) return false;
    if (state.usable === "dropped" && !os.some(function (o) { return !o.usable; })) return false;
    return true;
  }

  // The same rules as src/gallery/select.rs `compare`: over every variant the lowest best IoU /
  // the most proposals, or one variant's; ties by ref_id.
  function sortKey(refData) {
    var os = outcomes(refData);
    if (state.sort === "worst") {
      return os.reduce(function (m, o) { return Math.min(m, Math.fround(o.best_iou)); }, Infinity);
    }
    if (state.sort === "most-proposals") {
      return -variantsFor().reduce(function (m, v) {
        var p = proposalsOf(refData, v);
        return p ? Math.max(m, p.length) : m;
      }, -1);
    }
    if (state.sort === "random") return shuffleKey(state.seed, refData.ref_id);
    return 0;
  }

  var current = -1;

  function visibleCards() {
    return cards.filter(function (c) { return !c.node.hidden; });
  }

  function applyOrder() {
    var keyed = cards.map(function (c) {
      return { card: c, key: sortKey(c.ref), show: matches(c.ref) };
    });
    keyed.sort(function (a, b) {
      return a.key !== b.key ? (a.key < b.key ? -1 : 1) : a.card.ref.ref_id - b.card.ref.ref_id;
    });
    var container = $("cards");
    keyed.forEach(function (k) {
      k.card.node.hidden = !k.show;
      container.appendChild(k.card.node);
    });
    cards = keyed.map(function (k) { return k.card; });
    var shown = visibleCards().length;
    $("count").textContent = "showing " + shown + " of the " + cards.length + " refs in this gallery (" +
      DATA.selection.refs_in_output + " in the output)";
    current = -1;
  }

  function applyBoxes() {
    var threshold = Math.fround(state.score);
    document.querySelectorAll(".panel").forEach(function (panel) {
      panel.hidden = state.variants.indexOf(panel.getAttribute("data-variant")) < 0;
    });
    document.querySelectorAll(".layer-all").forEach(function (g) { g.classList.toggle("hidden", !state.all); });
    document.querySelectorAll(".layer-best").forEach(function (g) { g.classList.toggle("hidden", !state.best); });
    document.querySelectorAll(".layer-gt").forEach(function (g) { g.classList.toggle("hidden", !state.gt); });
    document.querySelectorAll("text.box-label").forEach(function (t) { t.classList.toggle("hidden", !state.labels); });
    document.querySelectorAll("g.box").forEach(function (g) {
      // float32 against float32, as the shards store scores.
      var below = Math.fround(Number(g.getAttribute("data-score"))) < threshold;
      var dropped = state.onlyKept && g.getAttribute("data-kept") !== "1";
      g.classList.toggle("hidden", below || dropped);
    });
    document.querySelectorAll(".panel").forEach(function (panel) {
      var span = panel.querySelector(".shown");
      if (!span) return;
      var n = panel.querySelectorAll(".layer-all g.box:not(.hidden)").length;
      span.textContent = state.score > 0 || state.onlyKept ? " (" + n + " shown)" : "";
    });
    $("score-value").textContent = Number(state.score).toFixed(2);
  }

  // ---- controls
  function syncControls() {
    $("split").value = state.split;
    $("category").value = state.category;
    $("iou-min").value = state.iouMin;
    $("iou-max").value = state.iouMax;
    $("usable").value = state.usable;
    $("sort").value = state.sort;
    $("sort-variant").value = state.sortVariant;
    $("seed").value = state.seed;
    $("show-gt").checked = state.gt;
    $("show-best").checked = state.best;
    $("show-all").checked = state.all;
    $("show-labels").checked = state.labels;
    $("only-kept").checked = state.onlyKept;
    $("score").value = state.score;
    variantNames.forEach(function (v) {
      $("variant-" + v).checked = state.variants.indexOf(v) >= 0;
    });
  }

  function fillSelect(id, values) {
    var select = $(id);
    values.forEach(function (v) {
      select.appendChild(el("option", { value: v }, v));
    });
  }

  function unique(values) {
    return values.filter(function (v, i) { return values.indexOf(v) === i; });
  }

  function changed(what) {
    if (what === "order") applyOrder();
    applyBoxes();
    writeHash();
  }

  function bind(id, event, update, what) {
    $(id).addEventListener(event, function (e) {
      update(e.target);
      changed(what);
    });
  }

  function setup() {
    document.title = DATA.title;
    $("title").textContent = DATA.title;
    var f = DATA.filter;
    var seen = DATA.variants.filter(function (v) { return v.sees_eval_images; }).map(function (v) { return v.name; });
    $("about").textContent = DATA.refs.length + " refs of " + DATA.dataset.kind + " (" + DATA.dataset.split_by +
      "), chosen " + (DATA.selection.listed ? "by ref_id" : "with --sort " + DATA.selection.sort +
      (DATA.selection.sort === "random" ? " --seed " + DATA.selection.seed : "") + " --n " + DATA.selection.n) +
      ". Green: ground truth; red: the best proposal; yellow: the proposals (dashed: dropped by the training filter: " +
      "confidence > " + f.train_conf + ", width and height > " + f.min_size + " px; a ref is kept with at least " +
      f.min_proposals + " left and a best IoU above " + f.min_best_iou + ")." +
      (seen.length ? " Trained on images of every split (their val/test boxes are optimistic): " + seen.join(", ") + "." : "");

    fillSelect("split", unique(DATA.refs.map(function (r) { return r.split; })));
    fillSelect("category", unique(DATA.refs.map(function (r) { return r.category; })).sort());
    fillSelect("sort-variant", variantNames);
    var toggles = $("variant-toggles");
    variantNames.forEach(function (v) {
      var label = el("label");
      var box = el("input", { type: "checkbox", id: "variant-" + v, "data-variant": v });
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + v));
      toggles.appendChild(label);
      bind("variant-" + v, "change", function (t) {
        state.variants = variantNames.filter(function (n) {
          return n === v ? t.checked : state.variants.indexOf(n) >= 0;
        });
      }, "boxes");
    });

    bind("split", "change", function (t) { state.split = t.value; }, "order");
    bind("category", "change", function (t) { state.category = t.value; }, "order");
    bind("iou-min", "input", function (t) { state.iouMin = Number(t.value) || 0; }, "order");
    bind("iou-max", "input", function (t) { state.iouMax = t.value === "" ? 1 : Number(t.value); }, "order");
    bind("usable", "change", function (t) { state.usable = t.value; }, "order");
    bind("sort", "change", function (t) { state.sort = t.value; }, "order");
    bind("sort-variant", "change", function (t) { state.sortVariant = t.value; }, "order");
    bind("seed", "input", function (t) { state.seed = Math.max(0, Math.floor(Number(t.value) || 0)); }, "order");
    bind("show-gt", "change", function (t) { state.gt = t.checked; }, "boxes");
    bind("show-best", "change", function (t) { state.best = t.checked; }, "boxes");
    bind("show-all", "change", function (t) { state.all = t.checked; }, "boxes");
    bind("show-labels", "change", function (t) { state.labels = t.checked; }, "boxes");
    bind("only-kept", "change", function (t) { state.onlyKept = t.checked; }, "boxes");
    bind("score", "input", function (t) { state.score = Number(t.value); }, "boxes");
  }

  // ---- keyboard
  function move(step) {
    var visible = visibleCards();
    if (!visible.length) return;
    var at = visible.indexOf(cards[current]);
    var next = Math.min(visible.length - 1, Math.max(0, at < 0 ? (step > 0 ? 0 : visible.length - 1) : at + step));
    cards.forEach(function (c) { c.node.classList.remove("current"); });
    current = cards.indexOf(visible[next]);
    var node = visible[next].node;
    node.classList.add("current");
    node.focus({ preventScroll: true });
    node.scrollIntoView({ block: "start" });
  }

  function nudgeScore(delta) {
    state.score = Math.min(1, Math.max(0, Math.round((state.score + delta) * 100) / 100));
    $("score").value = state.score;
  }

  var keys = {
    j: function () { move(1); return null; },
    k: function () { move(-1); return null; },
    a: function () { state.all = !state.all; return "boxes"; },
    g: function () { state.gt = !state.gt; return "boxes"; },
    b: function () { state.best = !state.best; return "boxes"; },
    l: function () { state.labels = !state.labels; return "boxes"; },
    "[": function () { nudgeScore(-0.05); return "boxes"; },
    "]": function () { nudgeScore(0.05); return "boxes"; },
    r: function () { state.sort = "random"; state.seed = (state.seed + 1) >>> 0; return "order"; }
  };

  document.addEventListener("keydown", function (e) {
    var tag = e.target && e.target.tagName;
    var typing = tag === "SELECT" || tag === "TEXTAREA" ||
      (tag === "INPUT" && e.target.type !== "checkbox" && e.target.type !== "range");
    if (typing) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || !Object.prototype.hasOwnProperty.call(keys, e.key)) return;
    e.preventDefault();
    var what = keys[e.key]();
    if (what) {
      syncControls();
      changed(what);
    }
  });

  // ---- start
  readHash();
  setup();
  cards = DATA.refs.map(function (r) {
    return { ref: r, node: drawCard(r) };
  });
  syncControls();
  applyOrder();
  applyBoxes();
  document.body.setAttribute("data-ready", "1");
}());
