export * from './errors.ts';
export * from './images.ts';
export * from './models.ts';
