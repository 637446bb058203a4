// City suggestions as you type, for every input with data-autocomplete (the ARIA combobox
// pattern: arrows move, Enter chooses, Escape closes). The forms work without this script.
"use strict";

(function () {
  var DEBOUNCE_MS = 150;
  var LIMIT = 8;

  function describe(city) {
    return [city.region, city.country].filter(Boolean).join(", ");
  }

  function setUp(input) {
    var list = document.getElementById(input.getAttribute("aria-controls"));
    var timer = null;
    var pending = null;
    var cities = [];
    var active = -1;

    function close() {
      list.hidden = true;
      list.textContent = "";
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      cities = [];
      active = -1;
    }

    function highlight(index) {
      var options = list.querySelectorAll("[role=option]");
      active = index;
      options.forEach(function (option, i) {
        option.setAttribute("aria-selected", i === index ? "true" : "false");
      });
      if (index >= 0) {
        input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function show(found) {
      cities = found;
      list.textContent = "";
      if (!found.length) {
        close();
        return;
      }
      found.forEach(function (city, i) {
        var option = document.createElement("li");
        option.id = list.id + "-" + i;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.dataset.cityId = city.id;
        var name = document.createElement("strong");
        name.textContent = city.name;
        var where = document.createElement("span");
        where.textContent = " " + describe(city);
        option.append(name, where);
        option.addEventListener("mousedown", function (event) {
          event.preventDefault(); // keep the focus in the input
          choose(i);
        });
        list.appendChild(option);
      });
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      active = -1;
    }

    function choose(index) {
      var city = cities[index];
      if (!city) return;
      if (input.dataset.pick === "follow") {
        follow(input, city);
        input.value = "";
        close();
      } else if (input.dataset.pick === "field") {
        // A workspace form: the name stays in view, the chosen city's id goes with it.
        input.value = city.name + " (" + describe(city) + ")";
        document.getElementById(input.dataset.idField).value = city.id;
        close();
      } else {
        window.location.assign("/cities/" + encodeURIComponent(city.id));
      }
    }

    function lookUp() {
      var q = input.value.trim();
      if (pending) pending.abort();
      if (!q) {
        close();
        return;
      }
      pending = new AbortController();
      var url = input.dataset.autocomplete + "?limit=" + LIMIT + "&q=" + encodeURIComponent(q);
      fetch(url, { signal: pending.signal, headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : { results: [] }; })
        .then(function (body) {
          if (input.value.trim() === q) show(body.results || []);
        })
        .catch(function () { /* aborted or offline: the form still submits */ });
    }

    input.addEventListener("input", function () {
      if (input.dataset.idField) document.getElementById(input.dataset.idField).value = "";
      clearTimeout(timer);
      timer = setTimeout(lookUp, DEBOUNCE_MS);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" && cities.length) {
        event.preventDefault();
        highlight((active + 1) % cities.length);
      } else if (event.key === "ArrowUp" && cities.length) {
        event.preventDefault();
        highlight(active <= 0 ? cities.length - 1 : active - 1);
      } else if (event.key === "Enter" && active >= 0) {
        event.preventDefault();
        choose(active);
      } else if (event.key === "Escape") {
        close();
      }
    });
    input.addEventListener("blur", function () { setTimeout(close, 100); });
  }

  function follow(input, city) {
    var chips = input.closest("[data-follow]").querySelector(".chips");
    if (chips.querySelector('input[value="' + city.id + '"]')) return;
    var chip = document.createElement("li");
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = "city_ids";
    hidden.value = city.id;
    var remove = document.createElement("button");
    remove.type = "button";
    remove.dataset.remove = "";
    remove.setAttribute("aria-label", "Stop following " + city.name);
    remove.textContent = "×";
    chip.append(hidden, document.createTextNode(city.name + ", " + city.country + " "), remove);
    chips.appendChild(chip);
  }

  document.addEventListener("click", function (event) {
    var remove = event.target.closest("[data-remove]");
    if (remove) remove.closest("li").remove();
  });
  document.querySelectorAll("input[data-autocomplete]").forEach(setUp);
})();
