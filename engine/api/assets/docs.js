// Renders the OpenAPI document named by <main data-spec> as operations grouped by tag, with
// their parameters, request bodies and responses, followed by the schemas they refer to.
//
// The document is data: every value from it reaches the page through textContent or a
// Text node (el() below), never as markup, so a description cannot inject anything.
'use strict';

(function () {
  const METHODS = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options', 'trace'];
  // Deeper than any schema of this API; stops a self-referencing inline schema.
  const MAX_DEPTH = 12;
  const SCHEMA_PREFIX = '#/components/schemas/';
  // the document's components.schemas, once loaded
  let schemas = {};

  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (key === 'text') node.textContent = String(value);
      else if (key === 'class') node.className = value;
      else node.setAttribute(key, String(value));
    }
    for (const child of children || []) {
      if (child !== undefined && child !== null && child !== false) node.append(child);
    }
    return node;
  }

  // Ids and fragments made of a name from the document, limited to characters that need
  // no escaping anywhere.
  function anchor(kind, name) {
    return kind + '-' + String(name).replace(/[^A-Za-z0-9_-]/g, '_');
  }

  function link(kind, name, text) {
    return el('a', { href: '#' + anchor(kind, name), text: text === undefined ? name : text });
  }

  function json(value) {
    try {
      return JSON.stringify(value);
    } catch (_) {
      return String(value);
    }
  }

  function typeText(schema) {
    if (Array.isArray(schema.enum)) {
      const values = schema.enum.map(json);
      return values.length === 1 ? '= ' + values[0] : 'one of ' + values.join(', ');
    }
    const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
    let text = types.join(' | ');
    if (schema.format) text += ' (' + schema.format + ')';
    if (!text && !schema.oneOf && !schema.anyOf && !schema.allOf) {
      text = schema.properties ? 'object' : 'any JSON';
    }
    return text;
  }

  function refName(ref) {
    return typeof ref === 'string' && ref.startsWith(SCHEMA_PREFIX) ? ref.slice(SCHEMA_PREFIX.length) : null;
  }

  function isNull(schema) {
    return schema && schema.type === 'null';
  }

  // A body's own schema is shown in place; schemas it refers to are links to the list of
  // schemas, which keeps recursive schemas finite.
  function bodySchemaNode(schema) {
    const name = schema && refName(schema.$ref);
    if (!name || !Object.prototype.hasOwnProperty.call(schemas, name)) return schemaNode(schema, 0);
    return el('div', {}, [link('schema', name), schemaNode(schemas[name], 1)]);
  }

  function isSimple(schema) {
    return !schema.properties && !schema.items && !schema.oneOf && !schema.anyOf && !schema.allOf;
  }

  function schemaNode(schema, depth) {
    if (!schema || typeof schema !== 'object') return el('span', { class: 'type', text: 'any JSON' });
    if (depth > MAX_DEPTH) return el('span', { class: 'note', text: '…' });

    const box = el('div', { class: 'schema' });
    const head = el('div', { class: 'schema-head' });
    box.append(head);

    if (typeof schema.$ref === 'string') {
      const name = refName(schema.$ref);
      head.append(name ? link('schema', name) : el('span', { class: 'type', text: schema.$ref }));
    } else {
      const text = typeText(schema);
      if (text) head.append(el('span', { class: 'type', text: text }));
    }
    if (schema.description) box.append(el('p', { class: 'desc', text: schema.description }));

    const alternatives = schema.oneOf || schema.anyOf;
    if (Array.isArray(alternatives)) {
      const others = alternatives.filter((s) => !isNull(s));
      const other = others.length === 1 && alternatives.length === 2 ? others[0] : null;
      if (other && isSimple(other)) {
        // `T or null`, the way an Option<T> field comes out
        const name = refName(other.$ref);
        head.append(name ? link('schema', name) : el('span', { class: 'type', text: typeText(other) }));
        head.append(el('span', { class: 'type', text: ' | null' }));
        if (other.description && !schema.description) box.append(el('p', { class: 'desc', text: other.description }));
      } else if (other) {
        head.append(el('span', { class: 'note', text: 'null, or:' }));
        box.append(schemaNode(other, depth + 1));
      } else {
        head.append(el('span', { class: 'note', text: schema.oneOf ? 'one of:' : 'any of:' }));
        box.append(alternativesList(alternatives, depth));
      }
    }
    if (Array.isArray(schema.allOf)) {
      head.append(el('span', { class: 'note', text: 'all of:' }));
      box.append(alternativesList(schema.allOf, depth));
    }
    if (schema.items) {
      box.append(el('div', { class: 'note', text: 'items:' }), schemaNode(schema.items, depth + 1));
    }
    if (schema.properties && typeof schema.properties === 'object') {
      box.append(propertiesTable(schema, depth));
    }
    if (schema.additionalProperties === false) {
      box.append(el('div', { class: 'note', text: 'no other fields are accepted' }));
    } else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
      box.append(el('div', { class: 'note', text: 'values:' }), schemaNode(schema.additionalProperties, depth + 1));
    }
    if ('default' in schema) box.append(el('div', { class: 'note', text: 'default: ' + json(schema.default) }));
    if ('example' in schema) box.append(el('div', { class: 'note', text: 'example: ' + json(schema.example) }));
    return box;
  }

  function table(headings, rows) {
    const head = el('thead', {}, [el('tr', {}, headings.map((h) => el('th', { text: h })))]);
    return el('table', {}, [head, el('tbody', {}, rows)]);
  }

  function requiredMark(required) {
    return required ? el('span', { class: 'required', text: 'required' }) : null;
  }

  function alternativesList(list, depth) {
    return el('ol', { class: 'alternatives' }, list.map((s) => el('li', {}, [schemaNode(s, depth + 1)])));
  }

  function propertiesTable(schema, depth) {
    const required = new Set(Array.isArray(schema.required) ? schema.required : []);
    const rows = Object.entries(schema.properties).map(([name, property]) =>
      el('tr', {}, [
        el('td', { class: 'name' }, [name, requiredMark(required.has(name))]),
        el('td', {}, [schemaNode(property, depth + 1)]),
      ]),
    );
    return table(['field', 'schema'], rows);
  }

  function contentList(content) {
    if (!content || typeof content !== 'object') return [];
    return Object.entries(content).map(([type, media]) =>
      el('div', {}, [
        el('div', { class: 'content-type', text: type }),
        media && media.schema ? bodySchemaNode(media.schema) : null,
      ]),
    );
  }

  function parametersSection(parameters) {
    if (!Array.isArray(parameters) || parameters.length === 0) return null;
    const rows = parameters.map((p) =>
      el('tr', {}, [
        el('td', { class: 'name' }, [String(p.name), requiredMark(p.required)]),
        el('td', { text: p.in }),
        el('td', {}, [schemaNode(p.schema, 1), p.description ? el('p', { class: 'desc', text: p.description }) : null]),
      ]),
    );
    return [el('h3', { text: 'Parameters' }), table(['name', 'in', 'schema'], rows)];
  }

  function requestSection(body) {
    if (!body || typeof body !== 'object') return null;
    const title = 'Request body' + (body.required ? '' : ' (optional)');
    return [el('h3', { text: title }), body.description ? el('p', { class: 'desc', text: body.description }) : null]
      .concat(contentList(body.content));
  }

  function responsesSection(responses) {
    if (!responses || typeof responses !== 'object') return null;
    const rows = Object.entries(responses).map(([status, response]) =>
      el('tr', {}, [
        el('td', { class: 'status-code', text: status }),
        el('td', {}, [response && response.description ? el('p', { text: response.description }) : null]
          .concat(contentList(response && response.content))),
      ]),
    );
    return [el('h3', { text: 'Responses' }), el('table', {}, [el('tbody', {}, rows)])];
  }

  function operationNode(op) {
    const summary = el('summary', {}, [
      el('span', { class: 'method method-' + op.method, text: op.method }),
      el('span', { class: 'path', text: op.path }),
      el('span', { class: 'summary', text: op.operation.summary || '' }),
      Array.isArray(op.operation.security) && op.operation.security.length > 0
        ? el('span', { class: 'lock', text: 'token' })
        : null,
    ]);
    const o = op.operation;
    const body = el('div', { class: 'op-body' }, [
      o.description ? el('p', { class: 'desc', text: o.description }) : null,
      o.operationId ? el('div', { class: 'note', text: 'operation id: ' + o.operationId }) : null,
    ]);
    const parts = [parametersSection(o.parameters), requestSection(o.requestBody), responsesSection(o.responses)];
    for (const part of parts) {
      if (part) body.append(...part.filter(Boolean));
    }
    const id = anchor('op', o.operationId || op.method + op.path);
    const node = el('details', { class: 'op', id: id }, [summary, body]);
    const words = [op.method, op.path, o.summary, o.operationId, op.tag];
    node.dataset.search = words.filter(Boolean).join(' ').toLowerCase();
    return node;
  }

  function operationsByTag(doc) {
    const groups = new Map();
    for (const tag of Array.isArray(doc.tags) ? doc.tags : []) {
      if (tag && tag.name) groups.set(tag.name, []);
    }
    const later = new Map();
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) {
        const operation = item && item[method];
        if (!operation) continue;
        const tag = Array.isArray(operation.tags) && operation.tags.length ? String(operation.tags[0]) : 'other';
        const target = groups.has(tag) ? groups : later;
        if (!target.has(tag)) target.set(tag, []);
        target.get(tag).push({ method: method, path: path, tag: tag, operation: operation });
      }
    }
    // Declared tags keep their order; the rest follow alphabetically.
    for (const tag of [...later.keys()].sort()) groups.set(tag, later.get(tag));
    return groups;
  }

  function navEntry(tag, count) {
    return el('span', {}, [link('tag', tag), el('span', { class: 'count', text: ' ' + count })]);
  }

  function section(tag, children) {
    return el('section', { id: anchor('tag', tag) }, [el('h2', { text: tag })].concat(children));
  }

  function render(doc, main) {
    schemas = (doc.components && doc.components.schemas) || {};
    const info = doc.info || {};
    if (info.title) {
      document.getElementById('title').textContent = info.title;
      document.title = info.title;
    }
    document.getElementById('version').textContent =
      'version ' + (info.version || '?') + ' · OpenAPI ' + (doc.openapi || '?');
    document.getElementById('description').textContent = info.description || '';

    const nav = document.getElementById('tags');
    const sections = [];
    for (const [tag, ops] of operationsByTag(doc)) {
      if (ops.length === 0) continue;
      nav.append(navEntry(tag, ops.length));
      sections.push(section(tag, ops.map(operationNode)));
    }

    const names = Object.keys(schemas).sort();
    if (names.length) {
      nav.append(navEntry('schemas', names.length));
      const components = names.map((name) =>
        el('details', { class: 'component', id: anchor('schema', name) }, [
          el('summary', {}, [el('span', { class: 'path', text: name })]),
          el('div', { class: 'component-body' }, [schemaNode(schemas[name], 0)]),
        ]),
      );
      sections.push(section('schemas', components));
    }
    main.replaceChildren(...sections);
  }

  // A link to an operation or schema opens it (and what contains it) before scrolling.
  function openTarget() {
    const id = decodeURIComponent(location.hash.slice(1));
    const target = id && document.getElementById(id);
    if (!target) return;
    for (let node = target; node; node = node.parentElement) {
      if (node.tagName === 'DETAILS') node.open = true;
    }
    target.scrollIntoView();
  }

  function filter(query) {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    for (const section of document.querySelectorAll('main section')) {
      let shown = 0;
      for (const op of section.querySelectorAll('details.op')) {
        const match = words.every((w) => op.dataset.search.includes(w));
        op.hidden = !match;
        if (match) shown += 1;
      }
      const isSchemas = section.id === anchor('tag', 'schemas');
      section.hidden = !isSchemas && shown === 0;
    }
  }

  async function start() {
    const main = document.getElementById('docs');
    try {
      const response = await fetch(main.dataset.spec, { headers: { Accept: 'application/json' } });
      if (!response.ok) throw new Error('HTTP ' + response.status);
      render(await response.json(), main);
    } catch (e) {
      main.replaceChildren(el('p', { class: 'error', text: 'Could not load ' + main.dataset.spec + ': ' + e.message }));
      return;
    }
    const input = document.getElementById('filter');
    input.addEventListener('input', () => filter(input.value));
    window.addEventListener('hashchange', openTarget);
    openTarget();
  }

  start();
})();
