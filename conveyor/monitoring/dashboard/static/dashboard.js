// Live updates: the server-sent events of /live become an htmx event ("conveyor-live")
// that the pages' fragments listen for; the overview's charts are drawn with uPlot.
(function () {
  "use strict";
  var live = document.getElementById("live");
  function connect() {
    var source = new EventSource("/live");
    source.onopen = function () { live.classList.add("on"); };
    source.onerror = function () { live.classList.remove("on"); };
    source.addEventListener("batch", function (event) {
      htmx.trigger(document.body, "conveyor-live", { events: JSON.parse(event.data) });
    });
  }
  connect();

  var charts = {};
  function draw(id, times, values, color) {
    var element = document.getElementById(id);
    if (!element) { return; }
    var data = [times, values];
    if (charts[id]) { charts[id].setData(data); return; }
    var width = Math.max(260, element.clientWidth || 300);
    charts[id] = new uPlot({
      width: width, height: 180, legend: { show: false },
      scales: { x: { time: true } },
      series: [{}, { label: id, stroke: color, fill: color + "22", width: 2 }],
      axes: [{}, { size: 60 }]
    }, data, element);
  }
  function refreshCharts() {
    if (!document.getElementById("chart-succeeded")) { return; }
    fetch("/api/series", { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        draw("chart-succeeded", s.t, s.succeeded, "#137333");
        var rate = s.failed.map(function (failed, i) {
          var done = failed + s.succeeded[i];
          return done ? (100 * failed) / done : null;
        });
        draw("chart-failed", s.t, rate, "#b3261e");
      });
  }
  refreshCharts();
  var pending = null;
  document.body.addEventListener("conveyor-live", function () {
    if (pending) { return; }
    pending = setTimeout(function () { pending = null; refreshCharts(); }, 3000);
  });
})();
