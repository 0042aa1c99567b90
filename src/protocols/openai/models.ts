/** GET /v1/models: a page of Model objects (the package's Models resource). */
export interface ModelObject {
  id: string;
  object: 'model';
  /** Seconds since the epoch. */
  created: number;
  owned_by: string;
}

export interface ModelList {
  object: 'list';
  data: ModelObject[];
}
