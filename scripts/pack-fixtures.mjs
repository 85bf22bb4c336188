#!/usr/bin/env node
// Packs ground-truth captures (a directory of <workload>/<config>/{snapshot.pickle,stats.json}, e.g. the unpacked
// ../shared/groundtruth/dev tarballs) into brotli-compressed test fixtures, so tests need nothing outside the repo.
// usage: node scripts/pack-fixtures.mjs UNPACKED_DIR [OUT_DIR=test/fixtures/captures]
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';

const [src, out = 'test/fixtures/captures'] = process.argv.slice(2);
if (!src) {
  console.error('usage: node scripts/pack-fixtures.mjs UNPACKED_DIR [OUT_DIR]');
  process.exit(2);
}
const br = (b) => brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 9, [constants.BROTLI_PARAM_LGWIN]: 24 } });
for (const workload of readdirSync(src).sort()) {
  for (const config of readdirSync(join(src, workload)).sort()) {
    const dir = join(src, workload, config);
    if (!existsSync(join(dir, 'snapshot.pickle'))) continue;
    mkdirSync(join(out, workload), { recursive: true });
    writeFileSync(join(out, workload, `${config}.pickle.br`), br(readFileSync(join(dir, 'snapshot.pickle'))));
    writeFileSync(join(out, workload, `${config}.stats.json.br`), br(readFileSync(join(dir, 'stats.json'))));
  }
}
