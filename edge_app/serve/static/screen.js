// The Screen page: send each chosen or dropped film to POST /api/screen, one after another, with
// a progress bar per file; then open the result (one film) or the list of results (several).
// Without JavaScript the same form posts to /screen and the server renders the list.
(function () {
  "use strict";
  var form = document.getElementById("screen-form");
  var drop = document.getElementById("drop");
  var list = document.getElementById("progress");
  var done = document.getElementById("progress-done");
  var resultsLink = document.getElementById("progress-results");
  var token = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var busy = false;

  function row(file) {
    var item = document.createElement("li");
    var name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name || "photo";
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    var state = document.createElement("span");
    state.className = "state";
    state.textContent = "waiting";
    item.appendChild(name);
    item.appendChild(bar);
    item.appendChild(state);
    list.appendChild(item);
    return { bar: bar, state: state };
  }

  function send(file, view) {
    return new Promise(function (resolve) {
      var data = new FormData();
      data.append("file", file, file.name || "photo.jpeg");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/screen");
      xhr.setRequestHeader("X-CSRFToken", token);
      xhr.responseType = "json";
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) {
          view.bar.value = Math.round(90 * event.loaded / event.total);
          view.state.textContent = "uploading";
        }
      });
      xhr.upload.addEventListener("load", function () { view.bar.value = 90; view.state.textContent = "screening"; });
      xhr.addEventListener("load", function () {
        var body = xhr.response || {};
        var link = xhr.getResponseHeader("Content-Location");
        view.bar.value = 100;
        if (xhr.status === 200 || xhr.status === 201) {
          view.state.textContent = "screened" + (body.uncertain ? " (uncertain)" : "");
        } else {
          view.state.textContent = body.error || ("failed (HTTP " + xhr.status + ")");
          view.state.classList.add("bad");
        }
        resolve(link ? { link: link, name: file.name || "photo" } : null);
      });
      xhr.addEventListener("error", function () {
        view.state.textContent = "the device did not answer: check the connection and try again";
        view.state.classList.add("bad");
        resolve(null);
      });
      xhr.send(data);
    });
  }

  function screenAll(files) {
    if (busy || !files || files.length === 0) { return; }
    busy = true;
    done.classList.add("hidden");
    list.textContent = "";
    var queue = Array.prototype.slice.call(files).map(function (file) { return { file: file, view: row(file) }; });
    var finished = [];
    var chain = Promise.resolve();
    queue.forEach(function (entry) {
      chain = chain.then(function () { return send(entry.file, entry.view); })
        .then(function (outcome) { if (outcome) { finished.push(outcome); } });
    });
    chain.then(function () {
      busy = false;
      form.reset();
      if (finished.length === 0) { return; }
      var target;
      if (finished.length === 1 && queue.length === 1) {
        target = finished[0].link;
      } else {
        var query = finished.map(function (f) {
          return "film=" + encodeURIComponent(f.link.split("/").pop()) + "&name=" + encodeURIComponent(f.name);
        }).join("&");
        target = "/screened?" + query;
      }
      resultsLink.href = target;
      done.classList.remove("hidden");
      window.location.assign(target);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var files = [];
    Array.prototype.forEach.call(form.querySelectorAll('input[type="file"]'), function (input) {
      Array.prototype.push.apply(files, input.files);
    });
    screenAll(files);
  });
  Array.prototype.forEach.call(form.querySelectorAll('input[type="file"]'), function (input) {
    input.addEventListener("change", function () { screenAll(input.files); });
  });
  ["dragenter", "dragover"].forEach(function (name) {
    drop.addEventListener(name, function (event) { event.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    drop.addEventListener(name, function (event) { event.preventDefault(); drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (event) { screenAll(event.dataTransfer.files); });
}());
