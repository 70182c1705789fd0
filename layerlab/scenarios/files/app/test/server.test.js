const assert = require("node:assert");
const app = require("../server");

describe("server", () => {
  let server;
  let base;

  before((done) => {
    server = app.listen(0, "127.0.0.1", () => {
      base = `http://127.0.0.1:${server.address().port}`;
      done();
    });
  });

  after((done) => {
    server.close(done);
  });

  it("answers on /health", async () => {
    const response = await fetch(`${base}/health`);
    assert.strictEqual(response.status, 200);
    assert.deepStrictEqual(await response.json(), { status: "ok" });
  });
});
