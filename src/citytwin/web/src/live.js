// Live updates: one MQTT over WebSocket connection to the platform's broker.

const CHUNK = 500; // topics per SUBSCRIBE packet

export class Live {
  constructor(url, onStatus) {
    this.url = url;
    this.onStatus = onStatus;
    this.handlers = new Map(); // topic -> Set(handler)
    this.client = null;
  }

  // mqtt.js is loaded here, after the first picture, not with the page (see build.mjs).
  async connect(credentials = null) {
    if (!this.url) {
      this.onStatus("off", "live updates off: the server names no MQTT WebSocket");
      return;
    }
    const { default: mqtt } = await import("mqtt");
    this.client = mqtt.connect(this.url, {
      clean: true,
      reconnectPeriod: 2000,
      connectTimeout: 10000,
      clientId: `citytwin-ui-${Math.random().toString(16).slice(2, 10)}`,
      // signed in: the session's token, so the broker sends what this identity may read
      ...(credentials ?? {}),
    });
    this.client.on("connect", () => {
      this.onStatus("on", "live");
      this.#subscribe([...this.handlers.keys()]);
    });
    this.client.on("reconnect", () => this.onStatus("off", "live: reconnecting"));
    this.client.on("close", () => this.onStatus("off", "live: disconnected"));
    this.client.on("error", (err) => this.onStatus("off", `live: ${err.message}`));
    this.client.on("message", (topic, payload) => {
      const handlers = this.handlers.get(topic);
      if (!handlers) return;
      let body;
      try {
        body = JSON.parse(new TextDecoder().decode(payload));
      } catch {
        return;
      }
      for (const h of handlers) h(body, topic);
    });
  }

  get connected() {
    return Boolean(this.client?.connected);
  }

  // Subscribe handler to each topic; returns a function that undoes it.
  subscribe(topics, handler) {
    const fresh = [];
    for (const t of topics) {
      let set = this.handlers.get(t);
      if (!set) {
        set = new Set();
        this.handlers.set(t, set);
        fresh.push(t);
      }
      set.add(handler);
    }
    if (this.connected) this.#subscribe(fresh);
    return () => {
      const gone = [];
      for (const t of topics) {
        const set = this.handlers.get(t);
        if (!set) continue;
        set.delete(handler);
        if (!set.size) {
          this.handlers.delete(t);
          gone.push(t);
        }
      }
      if (gone.length && this.connected) this.client.unsubscribe(gone);
    };
  }

  // The broker's acknowledgements are counted, so that a page (and its tests) can tell
  // when every live topic is in place: <body data-live="subscribed">.
  #subscribe(topics) {
    for (let i = 0; i < topics.length; i += CHUNK) {
      this.pending = (this.pending ?? 0) + 1;
      document.body.dataset.live = "subscribing";
      this.client.subscribe(topics.slice(i, i + CHUNK), { qos: 0 }, () => {
        this.pending -= 1;
        if (!this.pending) document.body.dataset.live = "subscribed";
      });
    }
  }
}
