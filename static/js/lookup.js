/* Choosing an account, gateway or phone by typing (softswitch_portal/generic/lookups.py).
 *
 * Each <div class="lookup" data-lookup-url="..."> holds a hidden input with the
 * chosen id (what the form submits, so ?account=42 links keep working) and a
 * text box with the chosen name. Typing asks the lookup endpoint for matches
 * and shows them in a menu; picking one sets both inputs.
 *
 * What the box shows is always what the form submits: leaving it without a
 * pick puts the chosen name back, and emptying it clears the choice.
 */
(function () {
  "use strict";

  // Long enough to skip the requests of a word typed at speed, short enough to feel instant.
  var DELAY_MS = 150;

  function setup(box, index) {
    var hidden = box.querySelector('input[type="hidden"]');
    var input = box.querySelector('input[type="text"]');
    var url = box.getAttribute("data-lookup-url");
    var menu = document.createElement("ul");
    menu.className = "lookup-menu";
    menu.id = (input.id || "lookup-" + index) + "-menu";
    menu.setAttribute("role", "listbox");
    menu.hidden = true;
    box.appendChild(menu);
    input.setAttribute("aria-controls", menu.id);

    var chosen = { id: hidden.value, text: input.value };
    var results = [];
    var active = -1;
    var timer = null;
    // Answers may arrive out of order: only the latest request's is shown.
    var latest = 0;
    // Enter pressed before the matches arrived: pick the first one when they do.
    var pickFirst = false;

    function close() {
      menu.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    // Marks option ``index`` (wrapping around), or none with -1.
    function highlight(index) {
      var options = menu.querySelectorAll(".lookup-option");
      active = index < 0 || !options.length ? -1 : (index + options.length) % options.length;
      for (var i = 0; i < options.length; i++) {
        options[i].classList.toggle("active", i === active);
        options[i].setAttribute("aria-selected", i === active ? "true" : "false");
      }
      if (active < 0) {
        input.removeAttribute("aria-activedescendant");
        return;
      }
      input.setAttribute("aria-activedescendant", options[active].id);
      options[active].scrollIntoView({ block: "nearest" });
    }

    function note(text) {
      var item = document.createElement("li");
      item.className = "lookup-note";
      item.textContent = text;
      menu.appendChild(item);
    }

    function show(data) {
      results = data.results;
      menu.textContent = "";
      results.forEach(function (row, i) {
        var item = document.createElement("li");
        item.className = "lookup-option";
        item.id = menu.id + "-" + i;
        item.setAttribute("role", "option");
        var text = document.createElement("span");
        text.className = "lookup-text";
        text.textContent = row.text;
        var hint = document.createElement("span");
        hint.className = "lookup-hint";
        hint.textContent = (row.hint ? row.hint + " · " : "") + "#" + row.id;
        item.appendChild(text);
        item.appendChild(hint);
        item.addEventListener("click", function () {
          pick(row);
        });
        menu.appendChild(item);
      });
      if (!results.length) note("No match");
      else if (data.more) note("More matches: type more of the name");
      menu.hidden = false;
      input.setAttribute("aria-expanded", "true");
      if (results.length) highlight(0);
      if (pickFirst && results.length) pick(results[0]);
      pickFirst = false;
    }

    function search() {
      clearTimeout(timer);
      var request = ++latest;
      fetch(url + "?q=" + encodeURIComponent(input.value.trim()), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          if (response.ok) return response.json();
          // A 403 or 404 may be an HTML page: its status is the message then.
          return response
            .json()
            .catch(function () {
              return {};
            })
            .then(function (data) {
              throw new Error(data.detail || (data.q && data.q[0]) || "the portal answered " + response.status);
            });
        })
        .then(function (data) {
          if (request === latest && document.activeElement === input) show(data);
        })
        .catch(function (error) {
          if (request !== latest) return;
          menu.textContent = "";
          note("Search failed: " + (error.message || "reload the page"));
          menu.hidden = false;
          pickFirst = false;
        });
    }

    function pick(row) {
      hidden.value = row.id;
      input.value = row.text;
      chosen = { id: String(row.id), text: row.text };
      close();
    }

    input.addEventListener("input", function () {
      // Matches of the previous text: no longer what Enter picks, and any still on the way are dropped.
      latest++;
      highlight(-1);
      if (!input.value.trim()) {
        // An empty box means "any": the choice goes with the text.
        hidden.value = "";
        chosen = { id: "", text: "" };
      }
      clearTimeout(timer);
      timer = setTimeout(search, DELAY_MS);
    });

    input.addEventListener("focus", function () {
      // The chosen name is selected, so typing replaces it; an empty box lists the first rows at once.
      input.select();
      if (!input.value) search();
    });

    input.addEventListener("keydown", function (event) {
      var open = !menu.hidden;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (open) highlight(active < 0 ? 0 : active + (event.key === "ArrowDown" ? 1 : -1));
        else search();
      } else if (event.key === "Enter") {
        if (open && active >= 0) {
          event.preventDefault();
          pick(results[active]);
        } else if (input.value.trim() && input.value !== chosen.text) {
          // Typed, but the matches are not in yet: wait for them rather than submit the old choice.
          event.preventDefault();
          pickFirst = true;
          search();
        }
      } else if (event.key === "Escape" && open) {
        event.preventDefault();
        input.value = chosen.text;
        close();
      }
    });

    input.addEventListener("blur", function () {
      clearTimeout(timer);
      latest++;
      pickFirst = false;
      input.value = chosen.text;
      hidden.value = chosen.id;
      close();
    });

    // Keep the focus in the box while a menu entry is clicked, so blur does not close the menu first.
    menu.addEventListener("mousedown", function (event) {
      event.preventDefault();
    });
  }

  function start() {
    var boxes = document.querySelectorAll(".lookup[data-lookup-url]");
    for (var i = 0; i < boxes.length; i++) setup(boxes[i], i);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
