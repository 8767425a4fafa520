/**
 * fast-check parameters shared by the property tests. The seed is fixed by default so that a CI run
 * is reproducible and a run that fails locally fails again; explore with FUZZ_SEED=random (and more
 * cases with FUZZ_RUNS=N). fast-check prints the seed and path of any counterexample it finds.
 */
const DEFAULT_SEED = 20261123;

export function fuzzParams(defaultRuns: number): { numRuns: number; seed?: number } {
  const runs = Number(process.env.FUZZ_RUNS);
  const numRuns = Number.isInteger(runs) && runs > 0 ? runs : defaultRuns;
  const s = process.env.FUZZ_SEED;
  if (s === 'random') return { numRuns };
  const seed = s !== undefined && /^-?\d+$/.test(s) ? Number(s) : DEFAULT_SEED;
  return { numRuns, seed };
}
