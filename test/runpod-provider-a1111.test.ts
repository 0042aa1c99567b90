import { describe } from 'vitest';
import { providerContract } from './helpers/provider-contract.ts';
import { runpodContractSpec } from './helpers/runpod.ts';

// One file per worker format, so the contract suites run in parallel (each starts three darkrooms).
describe('runpod provider, a1111 worker', () => providerContract(runpodContractSpec('a1111')));
