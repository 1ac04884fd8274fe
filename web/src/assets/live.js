// The overview's live parts: every two seconds, read /api/overview, update
// each queue's line of the table (counts, jobs/s, run times, paused or not),
// and draw the jobs done and dead per second on the canvas. No library: a
// canvas and a few lines.
(function () {
  "use strict";
  var chart = document.getElementById("throughput");
  if (!chart) { return; }
  var url = chart.getAttribute("data-poll");
  var every = 2000;
  var keep = 90;
  var done = [], dead = [];
  var last = null;

  function estimated(q, state) {
    return (q.estimated || []).indexOf(state) >= 0;
  }

  // The jobs done and dead per second since the last reading, summed over
  // the queues. An estimated count moves with the planner's statistics,
  // not with the jobs: a queue whose done count is an estimate adds the
  // rate at which its last jobs ended, and one whose dead count is an
  // estimate adds nothing to the dead.
  function rates(data, seconds) {
    var sum = { done: 0, dead: 0 };
    data.queues.forEach(function (q) {
      var before = last.queues[q.name];
      if (estimated(q, "done")) {
        sum.done += q.throughput;
      } else if (before && before.done !== null) {
        // a purge lowers the done count: no negative rates
        sum.done += Math.max(q.done - before.done, 0) / seconds;
      }
      if (!estimated(q, "dead") && before && before.dead !== null) {
        sum.dead += Math.max(q.dead - before.dead, 0) / seconds;
      }
    });
    return sum;
  }

  function ms(value) {
    return value === null || value === undefined ? "-" : value.toFixed(1) + " ms";
  }

  // The cells after a queue's last count, in the order the page has them:
  // jobs/s, p50, p99, then whether its claims are paused.
  function updateRest(last, q) {
    var cells = [];
    for (var cell = last.nextElementSibling; cell; cell = cell.nextElementSibling) { cells.push(cell); }
    if (cells.length < 4) { return; }
    cells[0].textContent = q.throughput.toFixed(2);
    cells[1].textContent = ms(q.p50_ms);
    cells[2].textContent = ms(q.p99_ms);
    var claims = document.createElement("span");
    claims.className = q.paused ? "paused" : "on";
    claims.textContent = q.paused ? "paused" : "on";
    cells[3].replaceChildren(claims);
  }

  function update(data) {
    var at = document.getElementById("counts-at");
    if (at) { at.textContent = new Date(data.time).toISOString().slice(11, 19) + " UTC"; }
    // the same reading again: the counts have not been read since
    if (last && data.time === last.time) { return; }
    data.queues.forEach(function (q) {
      var cell = null;
      ["pending", "running", "done", "dead", "cancelled"].forEach(function (state) {
        cell = document.querySelector('[data-queue="' + CSS.escape(q.name) + '"][data-state="' + state + '"]');
        // the count is a link to the jobs it counts: keep it one
        if (cell) {
          (cell.querySelector("a") || cell).textContent =
            (estimated(q, state) ? "\u2248 " : "") + String(q[state]);
        }
      });
      if (cell) { updateRest(cell, q); }
    });
    if (last) {
      var now = rates(data, Math.max((data.time - last.time) / 1000, 0.001));
      done.push(now.done);
      dead.push(now.dead);
      if (done.length > keep) { done.shift(); dead.shift(); }
    }
    last = { time: data.time, queues: {} };
    data.queues.forEach(function (q) {
      last.queues[q.name] = {
        done: estimated(q, "done") ? null : q.done,
        dead: estimated(q, "dead") ? null : q.dead
      };
    });
    var shown = document.getElementById("rates");
    if (shown && done.length) {
      shown.textContent = done[done.length - 1].toFixed(1) + " done/s, " +
        dead[dead.length - 1].toFixed(1) + " dead/s";
    }
    draw();
  }

  function draw() {
    var ratio = window.devicePixelRatio || 1;
    var width = chart.clientWidth, height = chart.clientHeight;
    chart.width = width * ratio;
    chart.height = height * ratio;
    var g = chart.getContext("2d");
    g.scale(ratio, ratio);
    g.clearRect(0, 0, width, height);
    var top = Math.max(1, Math.max.apply(null, done.concat(dead)));
    g.fillStyle = "#5f6b7a";
    g.font = "11px system-ui, sans-serif";
    g.fillText(top.toFixed(1) + "/s", 4, 12);
    g.fillText("0", 4, height - 4);
    function line(values, colour) {
      if (values.length < 2) { return; }
      g.strokeStyle = colour;
      g.lineWidth = 2;
      g.beginPath();
      values.forEach(function (value, i) {
        var x = width - (values.length - 1 - i) * (width / (keep - 1));
        var y = height - 4 - (value / top) * (height - 20);
        if (i === 0) { g.moveTo(x, y); } else { g.lineTo(x, y); }
      });
      g.stroke();
    }
    line(done, "#1a7f37");
    line(dead, "#b42318");
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { update(data); } })
      .catch(function () {})
      .then(function () { setTimeout(poll, every); });
  }
  poll();
})();
