export class AllocsimInputError extends Error {}
