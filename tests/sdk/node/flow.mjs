// Runway's documented flow with the official TypeScript SDK, unchanged but for baseURL and the
// key: upload, create, waitForTaskOutput, fetch, cancel, delete, and its error classes. Prints
// one JSON object of what it saw; tests/sdk/test_node_sdk.py checks it.
import fs from 'node:fs';
import path from 'node:path';
import RunwayML, { toFile } from '@runwayml/sdk';

const { BASE, TOKEN, VIDEO, LONG_VIDEO } = process.env;
const client = new RunwayML({ apiKey: TOKEN, baseURL: BASE, maxRetries: 0 });
const seen = {};

async function refusal(call) {
  try {
    await call();
    return { raised: null };
  } catch (error) {
    const classes = ['BadRequestError', 'AuthenticationError', 'NotFoundError'];
    const name = classes.find((cls) => error instanceof RunwayML[cls]) ?? error.constructor.name;
    return { raised: name, status: error.status, error: error.error };
  }
}

const file = await toFile(fs.createReadStream(VIDEO), path.basename(VIDEO));
const { uri } = await client.uploads.createEphemeral({ file });
seen.uri = uri;

const done = await client.videoToVideo
  .create({ model: 'gen4_aleph', promptText: 'the same street at night', videoUri: uri, seed: 5 })
  .waitForTaskOutput({ timeout: 120_000 });
seen.done = { status: done.status, output: done.output };
seen.fetched = (await client.tasks.retrieve(done.id)).status;
seen.organization = await client.organization.retrieve();

seen.badModel = await refusal(() =>
  client.videoToVideo.create({ model: 'seedance2', promptText: 'x', videoUri: uri }),
);
const stranger = new RunwayML({ apiKey: 'user:1-wrong', baseURL: BASE, maxRetries: 0 });
seen.badKey = await refusal(() => stranger.organization.retrieve());

const long = await toFile(fs.createReadStream(LONG_VIDEO), path.basename(LONG_VIDEO));
const slow = await client.videoToVideo.create({
  model: 'aleph2',
  videoUri: (await client.uploads.createEphemeral({ file: long })).uri,
});
let status = (await client.tasks.retrieve(slow.id)).status;
for (let i = 0; i < 200 && status !== 'RUNNING'; i += 1) {
  await new Promise((resolve) => setTimeout(resolve, 100));
  status = (await client.tasks.retrieve(slow.id)).status;
}
seen.before = status;
await client.tasks.delete(slow.id);
seen.cancelled = (await client.tasks.retrieve(slow.id)).status;
await client.tasks.delete(slow.id);
seen.deleted = await refusal(() => client.tasks.retrieve(slow.id));

console.log(JSON.stringify(seen));
