/** Sizes moved to the deploy layer; kept here for the benchmark and chaos scripts. */
export { formatBytes, parseSize } from '../deploy/size.ts';
