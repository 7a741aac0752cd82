import { describe, expect, it } from 'vitest';
import { candidatesOf, chooseQuantisation, quantisationOf } from '../../server/engine/chooseQuantisation.js';
import { wholeRepoOf } from '../../server/engine/hubFiles.js';

const GB = 1_000_000_000;

/** A repository as the hub lists gpt-oss-20b's: several quantisations, one split, a projector and a README. */
const repo = [
  { path: 'README.md', sizeBytes: 9_000 },
  { path: 'gpt-oss-20b-Q4_K_M.gguf', sizeBytes: 11.6 * GB },
  { path: 'gpt-oss-20b-Q8_0.gguf', sizeBytes: 12.1 * GB },
  { path: 'gpt-oss-20b-Q2_K.gguf', sizeBytes: 11.5 * GB },
  { path: 'gpt-oss-20b-MXFP4.gguf', sizeBytes: 12.1 * GB - 1 },
  { path: 'F16/gpt-oss-20b-F16-00002-of-00002.gguf', sizeBytes: 6 * GB },
  { path: 'F16/gpt-oss-20b-F16-00001-of-00002.gguf', sizeBytes: 7.8 * GB },
  { path: 'mmproj-gpt-oss-20b-F16.gguf', sizeBytes: 0.8 * GB },
];

describe('choosing a quantisation from a repository', () => {
  it('picks the largest model that fits', () => {
    const choice = chooseQuantisation(repo, (size) => size <= 12 * GB);
    expect(choice.chosen).toEqual({ file: 'gpt-oss-20b-Q4_K_M.gguf', sizeBytes: 11.6 * GB, quantisation: 'Q4_K_M' });
    expect(chooseQuantisation(repo, () => true).chosen?.quantisation).toBe('F16');
  });

  it('lists every model largest first, and chooses none when none fits', () => {
    const choice = chooseQuantisation(repo, (size) => size <= 10 * GB);
    expect(choice.chosen).toBeUndefined();
    expect(choice.candidates.map((candidate) => candidate.quantisation)).toEqual([
      'F16',
      'Q8_0',
      'MXFP4',
      'Q4_K_M',
      'Q2_K',
    ]);
  });

  it('counts a split model once, at the size of all its parts, and names it by its first part', () => {
    const split = candidatesOf(repo).find((candidate) => candidate.quantisation === 'F16');
    expect(split).toEqual({
      file: 'F16/gpt-oss-20b-F16-00001-of-00002.gguf',
      sizeBytes: 13.8 * GB,
      quantisation: 'F16',
    });
  });

  it('leaves out what is not a model: projectors, importance matrices, other files', () => {
    const files = candidatesOf([...repo, { path: 'imatrix_unsloth.gguf', sizeBytes: 1 }]).map((c) => c.file);
    expect(files.some((file) => /mmproj|imatrix|README/.test(file))).toBe(false);
  });

  it('reads the quantisation from the file name', () => {
    expect(quantisationOf('Qwen3-8B-UD-Q4_K_XL.gguf')).toBe('UD-Q4_K_XL');
    expect(quantisationOf('model.IQ2_XXS.gguf')).toBe('IQ2_XXS');
    expect(quantisationOf('gpt-oss-20b-mxfp4.gguf')).toBe('MXFP4');
    expect(quantisationOf('stories260K.gguf')).toBe('stories260K');
  });

  it('treats only hf:owner/repo, without a file or a tag, as a whole repository', () => {
    expect(wholeRepoOf('hf:ggml-org/gpt-oss-20b-GGUF')).toBe('ggml-org/gpt-oss-20b-GGUF');
    expect(wholeRepoOf('huggingface:ggml-org/gpt-oss-20b-GGUF')).toBe('ggml-org/gpt-oss-20b-GGUF');
    expect(wholeRepoOf('hf:ggml-org/gpt-oss-20b-GGUF:Q8_0')).toBeUndefined();
    expect(wholeRepoOf('hf:ggml-org/gpt-oss-20b-GGUF/gpt-oss-20b-mxfp4.gguf')).toBeUndefined();
    expect(wholeRepoOf('https://huggingface.co/ggml-org/gpt-oss-20b-GGUF')).toBeUndefined();
  });
});
